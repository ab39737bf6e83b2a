import EventStore
import Postgres

extension EventStore {
    /// Appends `events` in a transaction of its own. With `rollback` the transaction is rolled
    /// back instead of committed: the positions it drew stay holes in `global_position`, as a
    /// failed business transaction leaves them.
    /// - Returns: the positions the events got, committed or not.
    @discardableResult
    public func appendInOwnTransaction(
        _ events: [Event], expected: ExpectedVersion, rollback: Bool = false, on connection: PostgresConnection
    ) async throws -> [Int64] {
        var positions: [Int64] = []
        do {
            try await connection.transaction { tx in
                positions = try await self.append(events, expected: expected, in: tx).globalPositions
                if rollback { throw RolledBack() }
            }
        } catch is RolledBack {}
        return positions
    }

    private struct RolledBack: Error {}
}
