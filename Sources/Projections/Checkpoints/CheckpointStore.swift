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
    ///   - schema: the table names (docs/reference.md's defaults unless given).
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

    /// What the daemon recorded for each of `names` that has a row (in no particular order),
    /// with each unit's owner from the assignments table.
    public func records(_ names: [String], on connection: some PostgresQuerying) async throws -> [CheckpointRecord] {
        // The batch in flight: an open transaction tagged with the unit (`SessionTag`).
        let hashes = names.map(SessionTag.unitHash)
        return try await connection.query(
            """
            SELECT c.consumer_name, c.last_position, c.state, c.last_error, extract(epoch FROM now() - c.heartbeat_at)::float8,
                   (SELECT extract(epoch FROM clock_timestamp() - a.xact_start)::float8 FROM pg_stat_activity a
                    WHERE a.datname = current_database() AND \(SessionTag.matches(hash: "u.hash"))
                      AND a.state <> 'idle' AND a.xact_start IS NOT NULL
                    ORDER BY a.xact_start LIMIT 1),
                   n.worker_id::text, n.hostname, n.pid, extract(epoch FROM s.lease_expires_at - now())::float8,
                   s.fencing_token, c.retired_at IS NOT NULL, c.successor, c.events_per_second
            FROM \(self.checkpoints) c
            JOIN unnest($1::text[], $2::text[]) AS u(name, hash) ON u.name = c.consumer_name
            LEFT JOIN \(self.schema.assignmentsTable.quoted) s ON s.consumer_name = c.consumer_name
            LEFT JOIN \(self.schema.nodesTable.quoted) n ON n.worker_id = s.worker_id
            """, [PostgresTextArray(names), PostgresTextArray(hashes)]
        ).map { row in
            CheckpointRecord(
                name: try row.decode(String.self, at: 0), position: try row.decode(Int64.self, at: 1),
                state: try row.decode(String?.self, at: 2), lastError: try row.decode(String?.self, at: 3),
                heartbeatAge: try row.decode(Double?.self, at: 4).map { Duration.seconds($0) },
                batchRunning: try row.decode(Double?.self, at: 5).map { Duration.seconds($0) },
                owner: try row.decode(String?.self, at: 6).map { id in
                    CheckpointRecord.Owner(
                        instance: id, hostname: try row.decode(String?.self, at: 7), pid: try row.decode(Int32?.self, at: 8),
                        leaseExpiresIn: try row.decode(Double?.self, at: 9).map { Duration.seconds($0) },
                        token: try row.decode(Int64.self, at: 10))
                },
                successor: try row.decode(Bool.self, at: 11) ? (try row.decode(String?.self, at: 12) ?? "") : nil,
                eventsPerSecond: try row.decode(Double?.self, at: 13))
        }
    }

    /// Lag in seconds, per unit among `names` that has a row: the age of the oldest committed
    /// event after its checkpoint (0 when there is none), by the server's clock.
    public func lagSeconds(_ names: [String], on connection: some PostgresQuerying) async throws -> [String: Double] {
        var ages: [String: Double] = [:]
        for row in try await connection.query(
            """
            SELECT c.consumer_name, coalesce(greatest(0, extract(epoch FROM now() - (
                       SELECT e.created_at FROM \(self.schema.eventsTable.quoted) e WHERE e.global_position > c.last_position
                       ORDER BY e.global_position LIMIT 1)))::float8, 0)
            FROM \(self.checkpoints) c WHERE c.consumer_name = ANY($1::text[])
            """, [PostgresTextArray(names)])
        {
            ages[try row.decode(String.self, at: 0)] = try row.decode(Double.self, at: 1)
        }
        return ages
    }

    /// Creates the projection's row at 0 if it has none.
    func ensureRow(_ name: String, on connection: some PostgresQuerying) async throws {
        _ = try await connection.query(
            "INSERT INTO \(self.checkpoints) (consumer_name, last_position) VALUES ($1, 0) ON CONFLICT (consumer_name) DO NOTHING",
            [name])
    }

    /// The fencing step of every batch transaction: raises the row's fencing token to `token`
    /// unless a newer owner raised it further, which locks the row until commit (serialising
    /// with `reset` and any other instance), and returns the checkpoint and the log's head.
    /// The same statement tags the transaction (`SessionTag`) and lets the server end it when
    /// it idles longer than `idleTimeout` (a frozen owner then cannot hold the row for ever).
    /// It never creates the row (`ensureRow` does, at the runner's start).
    /// - Throws: `FencedError` when the row carries a newer token: another instance owns the
    ///   unit now, and nothing of this transaction may commit. `RetiredError` when a successor
    ///   took the projection's views over. `CheckpointDeletedError` when the row is gone.
    /// `parkedVersion`: the row's `parked_version` (see `ParkedAggregates`).
    func lock(_ name: String, token: Int64, idleTimeout: Duration, in tx: Transaction) async throws -> (
        position: Int64, head: Int64, parkedVersion: Int64
    ) {
        let milliseconds = max(1, idleTimeout.components.seconds * 1000 + idleTimeout.components.attoseconds / 1_000_000_000_000_000)
        let result = try await tx.query(
            """
            WITH session AS MATERIALIZED (
                SELECT set_config('idle_in_transaction_session_timeout', $3, true), set_config('application_name', $4, true))
            UPDATE \(self.checkpoints) AS c SET fencing_token = $2 FROM session
            WHERE c.consumer_name = $1 AND c.fencing_token <= $2
            RETURNING c.last_position, (SELECT coalesce(max(global_position), 0) FROM \(self.schema.eventsTable.quoted)),
                c.retired_at IS NOT NULL, c.successor, c.parked_version
            """, [name, token, "\(milliseconds)", SessionTag.applicationName(unit: name, token: token)])
        guard let row = result.first else {
            let exists = try await tx.query("SELECT 1 FROM \(self.checkpoints) WHERE consumer_name = $1", [name])
            if exists.isEmpty { throw CheckpointDeletedError(unit: name) }
            throw FencedError(unit: name, token: token)
        }
        if try row.decode(Bool.self, at: 2) { throw RetiredError(unit: name, successor: try row.decode(String?.self, at: 3)) }
        return (try row.decode(Int64.self, at: 0), try row.decode(Int64.self, at: 1), try row.decode(Int64.self, at: 4))
    }

    /// Ends the transactions of owners that `token` fenced off (frozen or partitioned away
    /// mid-batch): they can no longer commit, and ending them frees the checkpoint row at once
    /// instead of after `idle_in_transaction_session_timeout`. Needs the right to signal those
    /// backends (the same role, or pg_signal_backend).
    /// - Returns: how many it ended.
    func endFencedTransactions(_ name: String, token: Int64, on connection: some PostgresQuerying) async throws -> Int {
        Int(
            try await connection.query(
                """
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND \(SessionTag.matches(hash: "$1", belowToken: "$2"))
                """, [SessionTag.unitHash(name), token]
            )[0].decode(Int64.self, at: 0))
    }

    /// Locks the row for `reset` (waiting for the batch in flight) and returns the checkpoint
    /// and the log's head.
    func lockForReset(_ name: String, in tx: Transaction) async throws -> (position: Int64, head: Int64) {
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

    /// Moves the checkpoint and records the runner's state in the same statement, under the
    /// fencing token the transaction raised (`lock`).
    func advanceStatement(_ name: String, to position: Int64, token: Int64, status: ProjectionStatus) -> (String, [any PostgresEncodable]) {
        (
            """
            UPDATE \(self.checkpoints) SET last_position = $2, updated_at = now(), state = $3, last_error = $4,
                heartbeat_at = now(), head_position = $5, gap_position = $6, gap_holder = $7, events_per_second = $9
            WHERE consumer_name = $1 AND fencing_token = $8
            """,
            [
                name, position, status.state.rawValue, status.lastError, status.head, status.gapPosition,
                status.gapHolder.map(\.description), token, status.eventsPerSecond,
            ]
        )
    }

    /// Records the runner's state without moving the checkpoint (heartbeat, halt, gap wait, the
    /// final `stopped`); a no-op once a newer lease was handed out (the assignment's token) or a
    /// newer owner raised the row's fencing token.
    func recordState(_ name: String, token: Int64, status: ProjectionStatus, on connection: some PostgresQuerying) async throws {
        _ = try await connection.query(
            """
            UPDATE \(self.checkpoints) SET state = $2, last_error = $3, heartbeat_at = now(), head_position = $4,
                gap_position = $5, gap_holder = $6, events_per_second = $8
            WHERE consumer_name = $1 AND fencing_token <= $7 AND retired_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM \(self.schema.assignmentsTable.quoted) s WHERE s.consumer_name = $1 AND s.fencing_token > $7)
            """,
            [
                name, status.state.rawValue, status.lastError, status.head, status.gapPosition,
                status.gapHolder.map(\.description), token, status.eventsPerSecond,
            ])
    }

    /// Dead ranges longer than this many positions are audited as one row (see `auditStatement`).
    public static let auditRowPerPositionLimit: Int64 = 1000

    /// The audit rows of a dead range passed over (none twice for the same projection and
    /// position): one row per position, or for a range longer than `auditRowPerPositionLimit`
    /// (a sequence moved forward, a mass rollback) one row with `gap_position` its first
    /// position and `skip_to_position` its last. The columns eventsalsa/worker's table requires
    /// are filled too: `worker_id` (this store's instance), `skip_to_position` (the checkpoint
    /// the runner moves to; default the range's last position) and `first_seen_at` (when the
    /// runner first met the gap; default now).
    func auditStatement(
        _ name: String, _ range: DeadRange, highestVisible: Int64, skipTo: Int64? = nil, firstSeenAt: Date? = nil
    ) -> (String, [any PostgresEncodable]) {
        let gaps = self.schema.gapSkipsTable.quoted
        let low = range.positions.lowerBound
        let high = range.positions.upperBound
        let long = high - low >= Self.auditRowPerPositionLimit
        return (
            """
            INSERT INTO \(gaps) (consumer_name, gap_position, reason, highest_visible_position, worker_id, skip_to_position, first_seen_at)
            SELECT $1, g, $4, $5, $6::uuid, $7, coalesce($8::timestamptz, now()) FROM generate_series($2::bigint, $3::bigint) AS g
            WHERE NOT EXISTS (SELECT 1 FROM \(gaps) s WHERE s.consumer_name = $1 AND s.gap_position = g)
            """,
            [
                name, low, long ? low : high, range.reason.rawValue, highestVisible,
                self.instanceID, long ? high : (skipTo ?? high), firstSeenAt,
            ]
        )
    }
}
