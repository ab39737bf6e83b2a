import EventStore
import Foundation
import Postgres

/// The one owner of the checkpoint table's SQL (and of the gap-audit and dead-letter rows
/// written with a checkpoint), for one schema: every statement touching those tables is here.
public struct CheckpointStore: Sendable {
    public let schema: Schema
    /// The runtime instance writing through this store (`RuntimeOptions.instanceID`).
    public let instanceID: UUID

    /// - Parameters:
    ///   - schema: the table names (INTERFACE.md's defaults unless given).
    ///   - instanceID: written as `worker_id` into gap audit rows; pass `RuntimeOptions.instanceID`.
    public init(schema: Schema = Schema(), instanceID: UUID = UUID()) {
        self.schema = schema
        self.instanceID = instanceID
    }

    var checkpoints: String { self.schema.checkpointsTable.quoted }

    /// The projection's checkpoint, read without a lock; nil when it has no row yet.
    public func position(_ name: String, on connection: some PostgresQuerying) async throws -> Int64? {
        try await connection.query("SELECT last_position FROM \(self.checkpoints) WHERE consumer_name = $1", [name])
            .first?.decode(Int64.self, at: 0)
    }

    /// What the daemon recorded for each of `names` that has a row (in no particular order).
    public func records(_ names: [String], on connection: some PostgresQuerying) async throws -> [CheckpointRecord] {
        // The batch in flight: the open transaction of the session holding the projection's
        // ownership lock (see `claimOwnership`), as pg_stat_activity shows it.
        try await connection.query(
            """
            SELECT c.consumer_name, c.last_position, c.state, c.last_error, extract(epoch FROM now() - c.heartbeat_at)::float8,
                   (SELECT extract(epoch FROM clock_timestamp() - a.xact_start)::float8
                    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                      AND l.classid = hashtext('projectionist')::oid AND l.objid = hashtext(c.consumer_name)::oid
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND a.state <> 'idle' AND a.xact_start IS NOT NULL
                    LIMIT 1)
            FROM \(self.checkpoints) c WHERE c.consumer_name = ANY($1::text[])
            """, [PostgresTextArray(names)]
        ).map { row in
            CheckpointRecord(
                name: try row.decode(String.self, at: 0), position: try row.decode(Int64.self, at: 1),
                state: try row.decode(String?.self, at: 2), lastError: try row.decode(String?.self, at: 3),
                heartbeatAge: try row.decode(Double?.self, at: 4).map { Duration.seconds($0) },
                batchRunning: try row.decode(Double?.self, at: 5).map { Duration.seconds($0) })
        }
    }

    /// Whether this session owns the projection: a session-level advisory lock, taken if free.
    /// Another instance's runner waits in `standby` and takes over when this session ends.
    /// `records` reads the same lock to find the owner's batch in flight.
    func claimOwnership(_ name: String, on connection: some PostgresQuerying) async throws -> Bool {
        try await connection.query(
            """
            SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                             AND classid = hashtext('projectionist')::oid AND objid = hashtext($1)::oid AND objsubid = 2)
                   OR pg_try_advisory_lock(hashtext('projectionist'), hashtext($1))
            """, [name]
        )[0].decode(Bool.self, at: 0)
    }

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

    /// Deletes the rows of `names` (they start again from 0 when next run).
    public func remove(_ names: [String], on connection: some PostgresQuerying) async throws {
        try await connection.query("DELETE FROM \(self.checkpoints) WHERE consumer_name = ANY($1::text[])", [PostgresTextArray(names)])
    }

    /// Sets the checkpoint for `reset` (the row locked by `lock` in `tx`): clears the last
    /// error, and a failed projection is catching up again.
    func reset(_ name: String, to position: Int64, in tx: Transaction) async throws {
        try await tx.query(
            """
            UPDATE \(self.checkpoints) SET last_position = $2, updated_at = now(), last_error = NULL,
                state = CASE WHEN state = 'failed' THEN 'catching_up' ELSE state END
            WHERE consumer_name = $1
            """, [name, position])
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

    /// One audit row per position passed over (none twice for the same projection and
    /// position), with the columns eventsalsa/worker's table requires too: `worker_id` (this
    /// store's instance), `skip_to_position` (the checkpoint the runner moves to; default the
    /// range's last position) and `first_seen_at` (when the runner first met the gap; default now).
    func auditStatement(
        _ name: String, _ range: DeadRange, highestVisible: Int64, skipTo: Int64? = nil, firstSeenAt: Date? = nil
    ) -> (String, [any PostgresEncodable]) {
        let gaps = self.schema.gapSkipsTable.quoted
        return (
            """
            INSERT INTO \(gaps) (consumer_name, gap_position, reason, highest_visible_position, worker_id, skip_to_position, first_seen_at)
            SELECT $1, g, $4, $5, $6::uuid, $7, coalesce($8::timestamptz, now()) FROM generate_series($2::bigint, $3::bigint) AS g
            WHERE NOT EXISTS (SELECT 1 FROM \(gaps) s WHERE s.consumer_name = $1 AND s.gap_position = g)
            """,
            [
                name, range.positions.lowerBound, range.positions.upperBound, range.reason.rawValue, highestVisible,
                self.instanceID, skipTo ?? range.positions.upperBound, firstSeenAt,
            ]
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
