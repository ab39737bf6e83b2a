import EventStore
import Foundation
import Postgres

/// The SQL of the checkpoint, gap-audit and dead-letter tables, for one schema.
struct CheckpointStore: Sendable {
    let schema: Schema

    var checkpoints: String { self.schema.checkpointsTable.quoted }

    /// Creates the projection's row at 0 if it has none.
    func ensureRow(_ name: String, on connection: some PostgresQuerying) async throws {
        _ = try await connection.query(
            "INSERT INTO \(self.checkpoints) (consumer_name, last_position) VALUES ($1, 0) ON CONFLICT (consumer_name) DO NOTHING",
            [name])
    }

    /// Locks the row for this transaction (serialises with `reset` and other instances) and
    /// returns the checkpoint and the log's head.
    func lock(_ name: String, in tx: Transaction) async throws -> (position: Int64, head: Int64) {
        let result = try await tx.query(
            """
            SELECT last_position, (SELECT coalesce(max(global_position), 0) FROM \(self.schema.eventsTable.quoted))
            FROM \(self.checkpoints) WHERE consumer_name = $1 FOR UPDATE
            """, [name])
        guard let row = result.first else {
            throw PostgresError(code: .usage, message: "checkpoint row of projection '\(name)' disappeared")
        }
        return (try row.decode(Int64.self, at: 0), try row.decode(Int64.self, at: 1))
    }

    /// The checkpoint as committed, without a lock; nil when the projection has no row.
    func position(_ name: String, on connection: some PostgresQuerying) async throws -> Int64? {
        try await connection.query("SELECT last_position FROM \(self.checkpoints) WHERE consumer_name = $1", [name])
            .first?.decode(Int64.self, at: 0)
    }

    /// Moves the checkpoint and records the runner's state in the same statement.
    func advanceStatement(_ name: String, to position: Int64, status: ProjectionStatus) -> (String, [any PostgresEncodable]) {
        (
            """
            UPDATE \(self.checkpoints) SET last_position = $2, updated_at = now(), state = $3, last_error = $4,
                heartbeat_at = now(), head_position = $5, gap_position = $6, gap_holder = $7
            WHERE consumer_name = $1
            """,
            [
                name, position, status.state.rawValue, status.lastError, status.head, status.gapPosition,
                status.gapHolder.map(\.description),
            ]
        )
    }

    /// Records the runner's state without moving the checkpoint (heartbeat, park, gap wait).
    func recordState(_ name: String, status: ProjectionStatus, on connection: some PostgresQuerying) async throws {
        _ = try await connection.query(
            """
            UPDATE \(self.checkpoints) SET state = $2, last_error = $3, heartbeat_at = now(), head_position = $4,
                gap_position = $5, gap_holder = $6
            WHERE consumer_name = $1
            """,
            [
                name, status.state.rawValue, status.lastError, status.head, status.gapPosition,
                status.gapHolder.map(\.description),
            ])
    }

    /// One audit row per position passed over (none twice for the same projection and position).
    func auditStatement(_ name: String, _ range: DeadRange, highestVisible: Int64) -> (String, [any PostgresEncodable]) {
        let gaps = self.schema.gapSkipsTable.quoted
        return (
            """
            INSERT INTO \(gaps) (consumer_name, gap_position, reason, highest_visible_position)
            SELECT $1, g, $4, $5 FROM generate_series($2::bigint, $3::bigint) AS g
            WHERE NOT EXISTS (SELECT 1 FROM \(gaps) s WHERE s.consumer_name = $1 AND s.gap_position = g)
            """,
            [name, range.positions.lowerBound, range.positions.upperBound, range.reason.rawValue, highestVisible]
        )
    }

    func deadLetterStatement(_ name: String, _ error: HandlerError) -> (String, [any PostgresEncodable]) {
        (
            """
            INSERT INTO \(self.schema.deadLettersTable.quoted) (consumer_name, global_position, event_id, event_type, error)
            VALUES ($1, $2, $3::uuid, $4, $5)
            """,
            [name, error.position, error.eventID, error.eventType, error.underlying]
        )
    }
}
