import Postgres
import Synchronization

/// A connection that counts the statements run through it.
final class CountingDatabase: PostgresQuerying {
    let connection: PostgresConnection
    private let counter = Mutex(0)

    init(_ connection: PostgresConnection) { self.connection = connection }

    var queries: Int { self.counter.withLock { $0 } }

    func query(_ sql: String, _ parameters: [any PostgresEncodable]) async throws -> QueryResult {
        self.counter.withLock { $0 += 1 }
        return try await self.connection.query(sql, parameters)
    }
}
