import EventStore
import Postgres

/// Rebuilds a projection by moving its checkpoint, while a worker may be running it.
public enum ProjectionReset {
    /// In one transaction: waits for the runner's batch in flight (the checkpoint row lock),
    /// runs the projection's reset action when rewinding to 0, and sets the checkpoint. A
    /// running worker carries on from there without a restart (woken through the notify channel).
    /// - Returns: the checkpoint before the reset.
    @discardableResult
    public static func reset(
        _ projection: any Projection, to position: Int64 = 0, schema: Schema, on connection: PostgresConnection
    ) async throws -> Int64 {
        let checkpoints = CheckpointStore(schema: schema)
        try await checkpoints.ensureRow(projection.name, on: connection)
        return try await connection.transaction { tx in
            let (previous, _) = try await checkpoints.lock(projection.name, in: tx)
            if position == 0 { try await projection.reset(in: tx) }
            try await checkpoints.reset(projection.name, to: position, in: tx)
            if let channel = schema.notifyChannel, !channel.isEmpty {
                try await tx.query("SELECT pg_notify($1, $2)", [channel, "reset \(projection.name)"])
            }
            return previous
        }
    }
}
