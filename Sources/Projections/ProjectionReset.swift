import EventStore
import Postgres

/// Rebuilds a projection by moving its checkpoints (every partition's), while workers may be
/// running it.
public enum ProjectionReset {
    /// In one transaction: waits for the batches in flight (the checkpoint row locks), runs the
    /// projection's reset action when rewinding to 0, sets every unit's checkpoint, and drops the
    /// rows of an earlier partition layout. Running workers carry on from there without a restart.
    /// - Returns: the checkpoint before the reset (the lowest of the partitions').
    @discardableResult
    public static func reset(
        _ projection: any Projection, to position: Int64 = 0, schema: Schema, on connection: PostgresConnection
    ) async throws -> Int64 {
        let checkpoints = CheckpointStore(schema: schema)
        let units = WorkUnit.units(of: projection).map(\.name)
        for unit in units { try await checkpoints.ensureRow(unit, on: connection) }
        return try await connection.transaction { tx in
            let rows = try await PartitionLayout.rows(of: projection.name, schema: schema, on: tx)
            var previous: Int64?
            for row in rows where units.contains(row.unit) {  // in name order: no deadlock with another reset
                let (position, _) = try await checkpoints.lockForReset(row.unit, in: tx)
                previous = min(previous ?? position, position)
            }
            if position == 0 { try await projection.reset(in: tx) }
            for unit in units { try await checkpoints.reset(unit, to: position, in: tx) }
            let stale = rows.map(\.unit).filter { !units.contains($0) }
            if !stale.isEmpty {
                try await checkpoints.remove(stale, on: tx)
                try await tx.query(
                    "DELETE FROM \(schema.assignmentsTable.quoted) WHERE consumer_name = ANY($1::text[])", [PostgresTextArray(stale)])
            }
            if let channel = schema.notifyChannel, !channel.isEmpty {
                try await tx.query("SELECT pg_notify($1, $2)", [channel, "reset \(projection.name)"])
            }
            return previous ?? 0
        }
    }
}
