/// Something statements can run on: a connection, or a transaction in progress on one.
public protocol PostgresQuerying: Sendable {
    /// Runs one statement with bound parameters and returns its rows (binary format).
    @discardableResult
    func query(_ sql: String, _ parameters: [any PostgresEncodable]) async throws -> QueryResult
}

extension PostgresConnection: PostgresQuerying {
    @discardableResult
    public nonisolated func query(_ sql: String, _ parameters: [any PostgresEncodable]) async throws -> QueryResult {
        try await self.query(sql, parameters, textResults: false)
    }
}

extension Transaction: PostgresQuerying {}
