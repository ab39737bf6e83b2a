import Encryption
import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@testable import Projections

/// `ErrorRedaction` on errors the real server raises with a value in them.
@Suite(.database, .timeLimit(.minutes(1)))
struct ErrorRedactionTests {
    static let secret = "alice@blocked.example"

    /// The error `sql` raises on a fresh table `t` (email unique, a check constraint).
    static func serverError(_ sql: String, bind: Bool = true, on connection: PostgresConnection) async throws -> PostgresError {
        do {
            try await connection.query(sql, bind ? [Self.secret] : [])
        } catch let error as PostgresError {
            return error
        }
        Issue.record("\(sql) did not fail")
        return PostgresError(code: .usage, message: "no error")
    }

    static func event() -> PersistedEvent {
        PersistedEvent(
            globalPosition: 7, aggregateType: "Order", aggregateID: "o1", aggregateVersion: 1, eventID: UUID(), eventType: "OrderPlaced",
            eventVersion: 1, payload: Array(#"{"email":"\#(Self.secret)"}"#.utf8), metadata: nil, traceID: nil, correlationID: nil,
            causationID: nil, createdAt: PostgresTimestamp(Date()))
    }

    struct Thrown: Error, CustomStringConvertible {
        var description: String { "bad email \(ErrorRedactionTests.secret)" }
    }

    @Test("DETAIL and HINT are dropped; a constraint's message, SQLSTATE, constraint, table and column stay; a data exception's message (it quotes its input), a decoding error's and a Swift error's are withheld; EncryptionError stays")
    func redaction() async throws {
        let db = try await TestDatabase.fresh("redaction")
        let connection = try await db.connect()
        try await connection.execute(script: """
            CREATE TABLE t (id int PRIMARY KEY, email text UNIQUE CONSTRAINT email_not_blocked CHECK (email NOT LIKE '%@other.example'));
            INSERT INTO t VALUES (1, 'alice@blocked.example');
            """)
        let unique = try await Self.serverError("INSERT INTO t VALUES (2, $1)", on: connection)
        #expect(unique.detail?.contains(Self.secret) == true, "the server's DETAIL quotes the value: \(unique)")
        let text = ErrorRedaction.text(of: unique)
        #expect(!text.contains(Self.secret), "\(text)")
        #expect(text.contains("23505") && text.contains("t_email_key") && text.contains("table: public.t") && text.contains("duplicate key value"), "\(text)")

        let notNull = try await Self.serverError("INSERT INTO t (id, email) VALUES (NULL, $1)", on: connection)
        #expect(notNull.detail?.contains(Self.secret) == true)
        let notNullText = ErrorRedaction.text(of: notNull)
        #expect(!notNullText.contains(Self.secret) && notNullText.contains("23502") && notNullText.contains("column: id"), "\(notNullText)")

        let syntax = try await Self.serverError("SELECT $1::int", on: connection)
        #expect(syntax.message.contains(Self.secret), "a data exception's message quotes its input: \(syntax)")
        let syntaxText = ErrorRedaction.text(of: syntax)
        #expect(!syntaxText.contains(Self.secret) && syntaxText.contains("22P02") && syntaxText.contains("withheld"), "\(syntaxText)")

        let raised = try await Self.serverError("DO $$ BEGIN RAISE EXCEPTION 'no' USING DETAIL = 'x', HINT = 'y'; END $$", bind: false, on: connection)
        #expect(ErrorRedaction.text(of: raised).contains("P0001") && !ErrorRedaction.text(of: raised).contains(": no "), "\(ErrorRedaction.text(of: raised))")

        let decoding = PostgresError(code: .decoding, message: "column 0 (type oid 25): '\(Self.secret)' is not an integer")
        #expect(!ErrorRedaction.text(of: decoding).contains(Self.secret))
        #expect(!ErrorRedaction.text(of: Thrown()).contains(Self.secret) && ErrorRedaction.text(of: Thrown()).contains("Thrown"))
        let encryption = EncryptionError(.decryptionFailed, "the encrypted field at 'email' does not decrypt", scope: "pii", scopeID: "c1", keyVersion: 1)
        #expect(ErrorRedaction.text(of: encryption) == encryption.description)

        // HandlerError: the full text by default, the redacted one on demand; code still reads the SQLSTATE.
        let handlerError = HandlerError(event: Self.event(), error: unique)
        #expect(handlerError.description.contains(Self.secret), "unredacted, a plain projection keeps the detail")
        let redacted = handlerError.redacted()
        #expect(!redacted.description.contains(Self.secret) && !redacted.underlying.contains(Self.secret), "\(redacted)")
        #expect(redacted.description.contains("position 7") && redacted.postgres?.sqlState == "23505" && redacted.postgres?.detail == nil)
        #expect(!"\(redacted.postgres.map { "\($0)" } ?? "")".contains(Self.secret))
        #expect(!HandlerError(event: Self.event(), error: Thrown()).redacted().description.contains(Self.secret))
    }

    @Test("the runner's failure messages (transient, permanent, handler) are redacted for a projection that redactsErrors, and only then")
    func classifiedMessages() {
        let deadlock = PostgresError(code: .server, message: "deadlock detected", sqlState: "40P01", detail: "row (\(Self.secret))")
        let wrapped = HandlerError(event: Self.event(), error: deadlock)
        for error in [deadlock as any Error, wrapped] {
            guard case .transient(let message, _) = RunnerFailure.classify(error, cancelled: false, redacting: true) else {
                Issue.record("\(error) is transient")
                continue
            }
            #expect(!message.contains(Self.secret) && message.contains("40P01") && message.contains("deadlock detected"), "\(message)")
            guard case .transient(let full, _) = RunnerFailure.classify(error, cancelled: false) else { continue }
            #expect(full.contains(Self.secret), "without redaction the detail stays: \(full)")
        }
        let permanent = PostgresError(code: .server, message: "value \"\(Self.secret)\" is out of range", sqlState: "22003")
        guard case .permanent(let message, _) = RunnerFailure.classify(permanent, cancelled: false, redacting: true) else {
            Issue.record("22003 outside a handler is permanent")
            return
        }
        #expect(!message.contains(Self.secret) && message.contains("22003"), "\(message)")
    }
}
