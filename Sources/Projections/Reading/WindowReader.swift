import EventStore
import Postgres

/// The shared reader's SQL: the next rows of the log for everyone (every column, each row's
/// partition hash when some unit is partitioned), and late rows by position.
struct WindowReader: Sendable {
    let events: QualifiedName
    /// Whether to read each row's partition hash (some unit of the worker is partitioned).
    let partitioned: Bool

    private var selectList: String {
        (["global_position"] + PersistedEvent.columns + (self.partitioned ? [WorkUnit.partitionHashExpression] : []))
            .joined(separator: ", ")
    }

    /// The visible rows after `position`, ascending, at most `limit`.
    func read(after position: Int64, limit: Int, on database: some PostgresQuerying) async throws -> [WindowRow] {
        let result = try await database.query(
            "SELECT \(self.selectList) FROM \(self.events.quoted) WHERE global_position > $1 ORDER BY global_position LIMIT $2",
            [position, Int64(limit)])
        return try self.decode(result)
    }

    /// The rows at `positions` that are visible, ascending.
    func rows(at positions: [Int64], on database: some PostgresQuerying) async throws -> [WindowRow] {
        guard !positions.isEmpty else { return [] }
        let result = try await database.query(
            "SELECT \(self.selectList) FROM \(self.events.quoted) WHERE global_position = ANY($1::text[]::bigint[]) ORDER BY global_position",
            [PostgresTextArray(positions.map(String.init))])
        return try self.decode(result)
    }

    private func decode(_ result: QueryResult) throws -> [WindowRow] {
        var rows: [WindowRow] = []
        rows.reserveCapacity(result.count)
        let hashColumn = 1 + PersistedEvent.columns.count
        for row in result {
            let event = try PersistedEvent(row: row)
            rows.append(WindowRow(event: event, partitionHash: self.partitioned ? try row.decode(Int32.self, at: hashColumn) : nil))
        }
        return rows
    }
}
