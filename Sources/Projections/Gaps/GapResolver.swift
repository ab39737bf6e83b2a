import EventStore
import Foundation
import Postgres

/// Decides exactly whether missing positions are still to come or will never appear.
///
/// An INSERT takes `RowExclusiveLock` on the events table before it draws a position and
/// holds it until its transaction ends. A position below a visible one was drawn before that
/// one committed, so its owner, if still running, is among the lock's holders now. Once every
/// one of those transactions (identified by virtual transaction id, never by pid: a session
/// keeps its pid across transactions) has ended, a fresh snapshot tells: visible means
/// committed, invisible means dead.
struct GapResolver: Sendable {
    let events: QualifiedName

    /// The events table and, when it is partitioned, every partition: writers inserting through
    /// the parent lock both. `pg_partition_tree` lists nothing for a plain table, hence the union.
    static let eventsTables = "(SELECT $1::regclass UNION SELECT relid FROM pg_partition_tree($1::regclass))"

    struct Holder: Sendable {
        var virtualTransaction: String
        var pid: Int32
        var transactionStart: Date?
    }

    /// The transactions that may own a missing position: granted `RowExclusiveLock` holders on
    /// the events table, other than our own session.
    func holders(on connection: PostgresConnection) async throws -> [Holder] {
        try await connection.query(
            """
            SELECT DISTINCT l.virtualtransaction, l.pid, a.xact_start
            FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'relation' AND l.relation IN \(Self.eventsTables) AND l.mode = 'RowExclusiveLock'
              AND l.granted AND l.pid IS DISTINCT FROM pg_backend_pid()
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY a.xact_start NULLS LAST
            """, [self.events.quoted]
        ).map { row in
            Holder(
                virtualTransaction: try row.decode(String.self, at: 0), pid: try row.decode(Int32?.self, at: 1) ?? 0,
                transactionStart: try row.decode(Date?.self, at: 2))
        }
    }

    /// Which of `holders` still hold the lock, and whether `position` has become visible.
    func recheck(_ holders: [Holder], position: Int64, on connection: PostgresConnection) async throws
        -> (stillHeld: Set<String>, visible: Bool)
    {
        let row = try await connection.query(
            """
            SELECT coalesce((SELECT array_to_string(array_agg(DISTINCT l.virtualtransaction), ',') FROM pg_locks l
                     WHERE l.locktype = 'relation' AND l.relation IN \(Self.eventsTables) AND l.mode = 'RowExclusiveLock'
                       AND l.granted AND l.virtualtransaction = ANY($2::text[])), ''),
                   EXISTS (SELECT 1 FROM \(self.events.quoted) WHERE global_position = $3)
            """, [self.events.quoted, PostgresTextArray(holders.map(\.virtualTransaction)), position]
        )[0]
        let held = try row.decode(String.self, at: 0).split(separator: ",").map(String.init)
        return (Set(held), try row.decode(Bool.self, at: 1))
    }

    /// The positions in `ranges` visible now. Call only after the lock check that proved every
    /// possible owner ended (a separate, later statement: its snapshot sees their commits).
    func visiblePositions(in ranges: [ClosedRange<Int64>], on connection: PostgresConnection) async throws -> Set<Int64> {
        guard let low = ranges.first?.lowerBound, let high = ranges.last?.upperBound else { return [] }
        let result = try await connection.query(
            "SELECT global_position FROM \(self.events.quoted) WHERE global_position BETWEEN $1 AND $2", [low, high])
        return Set(try result.map { try $0.decode(Int64.self, at: 0) })
    }
}
