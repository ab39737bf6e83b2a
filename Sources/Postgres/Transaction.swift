/// A transaction in progress on a connection. Statements run through it belong to it; it is
/// committed or rolled back by `PostgresConnection.transaction(_:)`, never by its user.
public struct Transaction: Sendable {
    public let connection: PostgresConnection

    /// Runs one statement with bound parameters.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> QueryResult {
        try await self.connection.query(sql, parameters)
    }

    /// Runs a statement prepared with `PostgresConnection.prepare(_:_:)`.
    @discardableResult
    public func queryPrepared(_ name: String, _ parameters: [any PostgresEncodable] = []) async throws -> QueryResult {
        try await self.connection.queryPrepared(name, parameters)
    }

    /// Runs a pipeline inside this transaction (one round trip for all its statements).
    @discardableResult
    public func execute(_ pipeline: Pipeline, discardingResults: Bool = false) async throws -> [QueryResult] {
        try await self.connection.execute(pipeline, discardingResults: discardingResults)
    }

    /// Runs a multi-statement script inside this transaction.
    @discardableResult
    public func execute(script sql: String) async throws -> QueryResult {
        try await self.connection.execute(script: sql)
    }
}

extension PostgresConnection {
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws or the
    /// task is cancelled (the statement in flight is cancelled on the server first).
    ///
    /// The transaction cannot be left half-open: if the rollback itself fails, the connection is
    /// closed, which makes the server roll back.
    /// - Parameter begin: the statement that opens it, e.g. `BEGIN ISOLATION LEVEL REPEATABLE READ`.
    @discardableResult
    public nonisolated func transaction<T>(
        begin: String = "BEGIN", _ body: (Transaction) async throws -> T
    ) async throws -> T {
        try await self.query(begin)
        let value: T
        do {
            value = try await body(Transaction(connection: self))
            try Task.checkCancellation()
        } catch {
            await self.rollbackOrClose()
            throw error
        }
        do {
            try await self.query("COMMIT")
        } catch {
            // A failed COMMIT leaves nothing open on the server, but a lost connection does not
            // tell us whether it committed; the error says so through its classification.
            await self.rollbackOrClose()
            throw error
        }
        return value
    }

    /// Rolls back whatever is open; closes the connection when that is impossible.
    func rollbackOrClose() async {
        do {
            _ = try await self.uncancellable { connection in try connection.runScript("ROLLBACK") }
        } catch {
            self.close()
        }
    }
}
