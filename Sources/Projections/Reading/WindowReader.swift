import EventStore
import Postgres

/// The shared reader's SQL: the next rows of the log for everyone (every column, each row's
/// partition hash when some unit is partitioned), and late rows by position.
struct WindowReader: Sendable {
    let events: QualifiedName
    let layout: EventLayout
    /// Whether to read each row's partition hash (some unit of the worker is partitioned).
    let partitioned: Bool

    private var selectList: String {
        (["global_position"] + PersistedEvent.columns(self.layout) + (self.partitioned ? [WorkUnit.partitionHashExpression(self.layout)] : []))
            .joined(separator: ", ")
    }

    /// What one extension read found.
    struct Read: Sendable, Equatable {
        var rows: [WindowRow]
        /// It read up to the log's head: fewer rows than asked for are visible now.
        var reachedHead: Bool
    }

    /// The visible rows after `position`, ascending, at most `limit`.
    ///
    /// Each statement also bounds the positions (`<= after + span`), so that the plan is an index
    /// range scan whatever the table's statistics say: an unbounded `> $1 ORDER BY ... LIMIT`
    /// on a table not yet analyzed is planned as a whole-table scan and sort, every time (a
    /// catch-up right after a bulk load read the table once per batch). A stretch with fewer
    /// rows than asked (holes, a sequence moved forward) goes on past the bound, with a span
    /// four times as long each time, until the rows are there or the head is passed.
    func read(after position: Int64, limit: Int, on database: some PostgresQuerying) async throws -> Read {
        var rows: [WindowRow] = []
        var after = position
        var span = Int64(max(1, limit)) * 2
        while true {
            let remaining = limit - rows.count
            let upper = after.addingReportingOverflow(span).overflow ? Int64.max : after + span
            let result = try await database.query(
                """
                SELECT \(self.selectList) FROM \(self.events.quoted)
                WHERE global_position > $1 AND global_position <= $2 ORDER BY global_position LIMIT $3
                """,
                [after, upper, Int64(remaining)])
            rows += try self.decode(result)
            if rows.count >= limit { return Read(rows: rows, reachedHead: false) }
            let head = try await database.query("SELECT coalesce(max(global_position), 0) FROM \(self.events.quoted)", [])[0].decode(Int64.self, at: 0)
            if head <= upper { return Read(rows: rows, reachedHead: true) }
            after = upper
            span = span > Int64.max / 4 ? Int64.max : span * 4
        }
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
        let hashColumn = 1 + PersistedEvent.columns(self.layout).count
        for row in result {
            let event = try PersistedEvent(row: row)
            rows.append(WindowRow(event: event, partitionHash: self.partitioned ? try row.decode(Int32.self, at: hashColumn) : nil))
        }
        return rows
    }
}
