import Encryption
import Postgres

/// An error whose description never quotes event data (a payload's values), so that it may be
/// stored and logged for a projection that decrypts payloads (`Projection.redactsErrors`).
public protocol ValueFreeError: Error, CustomStringConvertible {}

/// Names the subject, scope and key version, never a value or a key.
extension EncryptionError: ValueFreeError {}
/// These name a unit, a token or a successor: the runner's own errors, never event data.
extension FencedError: ValueFreeError {}
extension RetiredError: ValueFreeError {}
extension CheckpointDeletedError: ValueFreeError {}

/// Error text that cannot carry a decrypted value, for projections that decrypt payloads.
///
/// PostgreSQL's DETAIL echoes row values (`Failing row contains (…)`, `Key (email)=(…)`), and so
/// can HINT; the primary message of a data exception quotes its input (`invalid input syntax for
/// type integer: "…"`), and one raised by a function says whatever it was given. Kept: the
/// SQLSTATE, the constraint, schema, table and column names, the statement's index in its
/// pipeline, and the primary message of the classes whose messages name objects only.
public enum ErrorRedaction {
    /// SQLSTATE classes whose primary messages name objects (tables, columns, constraints,
    /// transactions), never the values of a row: connection (08), feature not supported (0A),
    /// cardinality (21), integrity constraints (23), transaction state (25), transaction
    /// rollback (40), syntax and access (42), resources (53), limits (54), object state and
    /// locks (55), operator intervention (57), system (58).
    static let valueFreeClasses: Set<Substring> = ["08", "0A", "21", "23", "25", "40", "42", "53", "54", "55", "57", "58"]

    /// Why a field is missing from a redacted error, in its text.
    static let note = "withheld: the projection decrypts payloads and it may quote a decrypted value"

    /// `error`'s description with whatever may quote a value left out.
    public static func text(of error: any Error) -> String {
        if let error = error as? PostgresError { return self.text(of: error) }
        if let error = error as? any ValueFreeError { return error.description }
        return "\(type(of: error)) (its message \(self.note))"
    }

    /// A database error without DETAIL and HINT, and without its message where that may quote
    /// a value.
    public static func text(of error: PostgresError) -> String {
        var text = "\(error.code): \(self.message(of: error))"
        if let sqlState = error.sqlState { text += " [\(sqlState)]" }
        if let index = error.statementIndex { text += " (statement \(index) of the pipeline)" }
        if let constraint = error.constraint { text += " constraint: \(constraint)" }
        if let table = error.table { text += " table: \(error.schema.map { "\($0)." } ?? "")\(table)" }
        if let column = error.column { text += " column: \(column)" }
        if error.detail != nil || error.hint != nil { text += " (detail and hint \(self.note))" }
        return text
    }

    /// The primary message where it names objects only: a server error of a value-free class,
    /// or the client's own connection and usage errors (a decoding error quotes the cell).
    static func message(of error: PostgresError) -> String {
        let keep =
            switch error.code {
            case .server: error.sqlState.map { self.valueFreeClasses.contains($0.prefix(2)) } ?? false
            case .decoding: false
            default: true
            }
        return keep ? error.message : "(message \(self.note))"
    }

    /// `error` without the fields `text(of:)` leaves out (what code may still read of it).
    public static func redacted(_ error: PostgresError) -> PostgresError {
        var redacted = error
        redacted.message = self.message(of: error)
        redacted.detail = nil
        redacted.hint = nil
        return redacted
    }
}
