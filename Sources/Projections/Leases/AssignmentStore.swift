import EventStore
import Foundation
import Postgres

/// The one owner of the coordination tables' SQL (`worker_nodes`, `consumer_assignments`).
/// Lease times are the server's (`now()`), so instances never compare their own clocks.
struct AssignmentStore: Sendable {
    let schema: Schema
    let instanceID: UUID

    var nodes: String { self.schema.nodesTable.quoted }
    var assignments: String { self.schema.assignmentsTable.quoted }

    /// The units among `units` whose projection a successor retired: nobody needs to run them.
    func retiredUnits(_ units: [String], on connection: some PostgresQuerying) async throws -> Set<String> {
        Set(
            try await connection.query(
                "SELECT consumer_name FROM \(self.schema.checkpointsTable.quoted) WHERE retired_at IS NOT NULL AND consumer_name = ANY($1::text[])",
                [PostgresTextArray(units)]
            ).map { try $0.decode(String.self, at: 0) })
    }

    /// Creates the units' rows (free) if missing.
    func ensureUnits(_ units: [String], on connection: some PostgresQuerying) async throws {
        try await connection.query(
            "INSERT INTO \(self.assignments) (consumer_name) SELECT unnest($1::text[]) ON CONFLICT (consumer_name) DO NOTHING",
            [PostgresTextArray(units)])
    }

    /// Registers this instance or refreshes its heartbeat, with the units it configures.
    func heartbeat(hostname: String, pid: Int32, units: [String], on connection: some PostgresQuerying) async throws {
        try await connection.query(
            """
            INSERT INTO \(self.nodes) (worker_id, hostname, pid, units, heartbeat_at) VALUES ($1::uuid, $2, $3, $4::text[], now())
            ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = now(), updated_at = now(), hostname = $2, pid = $3, units = $4::text[]
            """, [self.instanceID, hostname, pid, PostgresTextArray(units.sorted())])
    }

    /// Extends this instance's leases among `units` by `ttl`. A lease that ran out is renewed
    /// as long as nobody claimed it meanwhile (its token is unchanged, so no one else committed).
    /// - Returns: the units still held, with their tokens.
    func renew(_ units: [String], ttl: Duration, on connection: some PostgresQuerying) async throws -> [String: Int64] {
        let rows = try await connection.query(
            """
            UPDATE \(self.assignments) SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
            WHERE worker_id = $1::uuid AND consumer_name = ANY($2::text[]) AND lease_expires_at IS NOT NULL
            RETURNING consumer_name, fencing_token
            """, [self.instanceID, PostgresTextArray(units), ttl.inSeconds])
        return try Self.tokens(rows)
    }

    /// The instances whose heartbeat is younger than `ttl`.
    func liveInstances(ttl: Duration, on connection: some PostgresQuerying) async throws -> [LiveInstance] {
        try await connection.query(
            """
            SELECT worker_id::text, coalesce(hostname, ''), coalesce(pid, 0), to_json(units)::text FROM \(self.nodes)
            WHERE heartbeat_at > now() - make_interval(secs => $1)
            """, [ttl.inSeconds]
        ).compactMap { row in
            guard let id = UUID(uuidString: try row.decode(String.self, at: 0)) else { return nil }
            return LiveInstance(
                id: id, hostname: try row.decode(String.self, at: 1), pid: try row.decode(Int32.self, at: 2),
                units: try row.decode(String?.self, at: 3).map { Set(try JSONDecoder().decode([String].self, from: Data($0.utf8))) })
        }
    }

    /// Who holds each of `units` (missing: no row yet, i.e. free).
    func holders(_ units: [String], on connection: some PostgresQuerying) async throws -> [String: LeaseBalance.Holder] {
        var holders: [String: LeaseBalance.Holder] = [:]
        for row in try await connection.query(
            """
            SELECT consumer_name, worker_id::text, coalesce(lease_expires_at > now(), false)
            FROM \(self.assignments) WHERE consumer_name = ANY($1::text[])
            """, [PostgresTextArray(units)])
        {
            holders[try row.decode(String.self, at: 0)] = LeaseBalance.Holder(
                instance: try row.decode(String?.self, at: 1).flatMap(UUID.init(uuidString:)), valid: try row.decode(Bool.self, at: 2))
        }
        return holders
    }

    /// Takes the units among `units` that are free or whose lease ran out, each with a new
    /// fencing token (one more than the last). Concurrent claims of one unit: one wins.
    /// - Returns: the units taken, with their tokens.
    func claim(_ units: [String], ttl: Duration, on connection: some PostgresQuerying) async throws -> [String: Int64] {
        try Self.tokens(
            try await connection.query(
                """
                UPDATE \(self.assignments)
                SET worker_id = $1::uuid, fencing_token = fencing_token + 1, lease_expires_at = now() + make_interval(secs => $3),
                    updated_at = now()
                WHERE consumer_name = ANY($2::text[]) AND (worker_id IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= now())
                RETURNING consumer_name, fencing_token
                """, [self.instanceID, PostgresTextArray(units), ttl.inSeconds]))
    }

    /// Lets `units` go at once (another instance may claim them on its next tick).
    func release(_ units: [String], on connection: some PostgresQuerying) async throws {
        try await connection.query(
            """
            UPDATE \(self.assignments) SET worker_id = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE worker_id = $1::uuid AND consumer_name = ANY($2::text[])
            """, [self.instanceID, PostgresTextArray(units)])
    }

    /// Shutdown: every lease of this instance goes, and so does its row.
    func leave(on connection: some PostgresQuerying) async throws {
        try await connection.query(
            "UPDATE \(self.assignments) SET worker_id = NULL, lease_expires_at = NULL, updated_at = now() WHERE worker_id = $1::uuid",
            [self.instanceID])
        try await connection.query("DELETE FROM \(self.nodes) WHERE worker_id = $1::uuid", [self.instanceID])
    }

    /// Deletes instances silent for longer than `age` (their leases are long expired; the
    /// foreign key clears them from the assignments).
    func forgetSilentInstances(olderThan age: Duration, on connection: some PostgresQuerying) async throws {
        try await connection.query("DELETE FROM \(self.nodes) WHERE heartbeat_at < now() - make_interval(secs => $1)", [age.inSeconds])
    }

    private static func tokens(_ rows: QueryResult) throws -> [String: Int64] {
        var tokens: [String: Int64] = [:]
        for row in rows { tokens[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1) }
        return tokens
    }
}
