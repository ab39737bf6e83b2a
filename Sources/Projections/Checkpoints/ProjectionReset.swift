import EventStore
import Postgres

/// Rebuilds a projection by moving its checkpoints (every partition's), while workers may be
/// running it.
public enum ProjectionReset {
    /// What a reset found and did.
    public struct Outcome: Sendable, Equatable {
        /// The projection's checkpoint rows before the reset, of whatever layout, in name order
        /// (a layout's rows that the reset created are not among them).
        public var previous: [PartitionLayout.Row]
        /// The log's head when the reset ran.
        public var head: Int64

        /// The lowest checkpoint before the reset; 0 when there was none.
        public var lowest: Int64 { self.previous.map(\.position).min() ?? 0 }
    }

    /// `reset` refused: the position lies past the log's head, so events appended later up to
    /// it would never be applied.
    public struct PastHead: Error, CustomStringConvertible, Sendable {
        public var projection: String
        public var position: Int64
        public var head: Int64
        public var description: String {
            "cannot reset projection '\(self.projection)' to \(self.position): the log's head is \(self.head), and events appended up to \(self.position) would never be applied; give --to \(self.head) or less"
        }
    }

    /// In one transaction: waits for the batches in flight (the checkpoint row locks), runs the
    /// projection's reset action when rewinding to 0, sets every unit's checkpoint, deletes the
    /// dead letters after the position (`rewindDeadLetters`), and drops the rows of an earlier
    /// partition layout. Running workers carry on from there without a restart;
    /// a worker still running the earlier layout stops those units (their rows are gone).
    /// - Throws: `PastHead` (nothing changed) when `position` lies past the log's head.
    @discardableResult
    public static func reset(
        _ projection: any Projection, to position: Int64 = 0, schema: Schema, on connection: PostgresConnection
    ) async throws -> Outcome {
        let checkpoints = CheckpointStore(schema: schema)
        // The head only grows: a position at or below it now stays so.
        let head = try await connection.query("SELECT coalesce(max(global_position), 0) FROM \(schema.eventsTable.quoted)")[0]
            .decode(Int64.self, at: 0)
        if position > head { throw PastHead(projection: projection.name, position: position, head: head) }
        let units = WorkUnit.units(of: projection).map(\.name)
        let before = try await PartitionLayout.rows(of: projection.name, schema: schema, on: connection)
        let existing = Set(before.map(\.unit))
        let created = units.filter { !existing.contains($0) }
        for unit in created { try await checkpoints.ensureRow(unit, on: connection) }
        return try await connection.transaction { tx in
            // Every row of any layout, locked in name order (no deadlock with another reset).
            var previous: [PartitionLayout.Row] = []
            var head = head
            for row in try await PartitionLayout.rows(of: projection.name, schema: schema, on: tx) {
                let (locked, lockedHead) = try await checkpoints.lockForReset(row.unit, in: tx)
                head = lockedHead
                if !created.contains(row.unit) { previous.append(PartitionLayout.Row(unit: row.unit, partition: row.partition, position: locked)) }
            }
            if position == 0 { try await projection.reset(in: tx) }
            for unit in units { try await checkpoints.reset(unit, to: position, in: tx) }
            let stale = previous.map(\.unit).filter { !units.contains($0) }
            try await Self.rewindDeadLetters(of: projection, units: units, stale: stale, to: position, schema: schema, in: tx)
            if !stale.isEmpty {
                try await checkpoints.remove(stale, on: tx)
                try await tx.query(
                    "DELETE FROM \(schema.assignmentsTable.quoted) WHERE consumer_name = ANY($1::text[])", [PostgresTextArray(stale)])
            }
            if let channel = schema.notifyChannel, !channel.isEmpty {
                try await tx.query("SELECT pg_notify($1, $2)", [channel, "reset \(projection.name)"])
            }
            return Outcome(previous: previous, head: head)
        }
    }

    /// The dead letters after `position` go (those events are applied, or fail, again); those at
    /// or before it stay, moved from an earlier layout's units to the unit their aggregate falls
    /// in now. Every unit's `parked_version` is raised: runners reload their parked sets.
    static func rewindDeadLetters(
        of projection: any Projection, units: [String], stale: [String], to position: Int64, schema: Schema, in tx: Transaction
    ) async throws {
        let dead = schema.deadLettersTable.quoted
        try await tx.query(
            "DELETE FROM \(dead) WHERE consumer_name = ANY($1::text[]) AND global_position > $2",
            [PostgresTextArray(units + stale), position])
        if !stale.isEmpty {
            let count = max(1, projection.partitions)
            let unit =
                count > 1
                ? "$2 || '#' || \(WorkUnit.partitionExpression(count: "\(count)", layout: .aggregate)) || '/\(count)'"
                : "$2"
            try await tx.query(
                "UPDATE \(dead) SET consumer_name = \(unit) WHERE consumer_name = ANY($1::text[]) AND aggregate_type IS NOT NULL AND aggregate_id IS NOT NULL",
                [PostgresTextArray(stale), projection.name])
        }
        let letters = DeadLetterStore(schema: schema)
        for unit in units {
            let (sql, parameters) = letters.bumpStatement(unit)
            try await tx.query(sql, parameters)
        }
    }
}
