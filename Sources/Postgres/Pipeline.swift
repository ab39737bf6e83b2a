import CLibPQ
import Glibc

/// Statements to send in libpq pipeline mode: all of them go out before any result is read,
/// and one sync point ends the batch. Many statements cost about one round trip.
///
/// Outside an explicit transaction the statements up to the sync form one implicit
/// transaction: if one fails, none of them commits.
public struct Pipeline: Sendable {
    enum Statement: Sendable {
        case query(sql: String, parameters: [PostgresParameter])
        case prepared(name: String, parameters: [PostgresParameter])
    }
    var statements: [Statement] = []

    public init() {}

    public var count: Int { self.statements.count }
    public var isEmpty: Bool { self.statements.isEmpty }

    /// Adds a statement with bound parameters.
    public mutating func append(_ sql: String, _ parameters: [any PostgresEncodable] = []) {
        self.statements.append(.query(sql: sql, parameters: parameters.map(\.postgresParameter)))
    }

    /// Adds a statement with already-encoded parameters.
    public mutating func append(_ sql: String, encoded parameters: [PostgresParameter]) {
        self.statements.append(.query(sql: sql, parameters: parameters))
    }

    /// Adds a run of a statement prepared on the connection with `prepare(_:_:)`.
    public mutating func appendPrepared(_ name: String, _ parameters: [any PostgresEncodable] = []) {
        self.statements.append(.prepared(name: name, parameters: parameters.map(\.postgresParameter)))
    }

    /// Adds a run of a prepared statement with already-encoded parameters.
    public mutating func appendPrepared(_ name: String, encoded parameters: [PostgresParameter]) {
        self.statements.append(.prepared(name: name, parameters: parameters))
    }
}
