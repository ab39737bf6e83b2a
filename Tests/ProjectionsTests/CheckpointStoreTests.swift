import EventStore
import Foundation
import Postgres
@testable import Projections
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct CheckpointStoreTests {
    /// Our own schema, and eventsalsa/worker's tables after `migrate` added ours to them.
    static func database(workerMade: Bool) async throws -> TestDatabase {
        let db = try await TestDatabase.fresh(workerMade ? "store_worker" : "store_own")
        let connection = try await db.connect()
        if workerMade { try await connection.execute(script: EventsalsaWorkerSchema.sql) }
        try await connection.execute(script: Migration.sql(for: Schema()))
        await connection.close()
        return db
    }

    @Test("gap audit rows carry the instance, skip-to position and first sighting, on either schema, once per position", arguments: [false, true])
    func auditRows(workerMade: Bool) async throws {
        let connection = try await Self.database(workerMade: workerMade).connect()
        let instance = UUID()
        let store = CheckpointStore(instanceID: instance)
        let seen = Date(timeIntervalSince1970: 1_800_000_000)
        let range = DeadRange(positions: 5...6, reason: .aborted)
        let (sql, parameters) = store.auditStatement("p", range, highestVisible: 9, skipTo: 8, firstSeenAt: seen)
        try await connection.query(sql, parameters)
        try await connection.query(sql, parameters)  // a replay after a rewind adds nothing
        let (defaulted, defaultParameters) = store.auditStatement("q", DeadRange(positions: 7...7, reason: .timeout), highestVisible: 9)
        try await connection.query(defaulted, defaultParameters)

        let rows = try await connection.query(
            """
            SELECT consumer_name, gap_position, reason, highest_visible_position, worker_id, skip_to_position,
                   first_seen_at, first_seen_at > now() - interval '1 minute'
            FROM consumer_gap_skips ORDER BY gap_position
            """)
        #expect(try rows.map { try $0.decode(String.self, at: 0) } == ["p", "p", "q"])
        #expect(try rows.map { try $0.decode(Int64.self, at: 1) } == [5, 6, 7])
        #expect(try rows.map { try $0.decode(String.self, at: 2) } == ["aborted", "aborted", "timeout"])
        #expect(try rows.map { try $0.decode(Int64.self, at: 3) } == [9, 9, 9])
        #expect(try rows.map { try $0.decode(UUID.self, at: 4) } == [instance, instance, instance])
        #expect(try rows.map { try $0.decode(Int64.self, at: 5) } == [8, 8, 7])
        #expect(try rows[0].decode(Date.self, at: 6) == seen)
        #expect(try rows[2].decode(Bool.self, at: 7))  // defaults to now
    }

    @Test("a dead range of 1,000 positions gets a row per position, a longer one a single row from its first to its last position", arguments: [false, true])
    func longRangeAudit(workerMade: Bool) async throws {
        let connection = try await Self.database(workerMade: workerMade).connect()
        let store = CheckpointStore()
        for range in [1...1000, 2001...2_002_000] as [ClosedRange<Int64>] {
            let (sql, parameters) = store.auditStatement("p", DeadRange(positions: range, reason: .aborted), highestVisible: 2_002_001)
            try await connection.query(sql, parameters)
            try await connection.query(sql, parameters)  // a replay after a rewind adds nothing
        }
        let short = try await connection.query(
            "SELECT count(*), min(gap_position), max(gap_position), min(skip_to_position), max(skip_to_position) FROM consumer_gap_skips WHERE gap_position <= 1000")[0]
        #expect(try (0..<5).map { try short.decode(Int64.self, at: $0) } == [1000, 1, 1000, 1000, 1000])
        let long = try await connection.query("SELECT gap_position, skip_to_position FROM consumer_gap_skips WHERE gap_position > 1000")
        #expect(try long.map { [try $0.decode(Int64.self, at: 0), try $0.decode(Int64.self, at: 1)] } == [[2001, 2_002_000]])
    }

    @Test("position, records and remove read and delete the rows of the names given")
    func readAndRemove() async throws {
        let connection = try await Self.database(workerMade: false).connect()
        let store = CheckpointStore()
        #expect(try await store.position("a", on: connection) == nil)
        try await store.ensureRow("a", on: connection)
        try await store.ensureRow("b", on: connection)
        try await connection.transaction { tx in
            _ = try await store.lockForReset("a", in: tx)
            try await store.reset("a", to: 12, in: tx)
        }
        #expect(try await store.position("a", on: connection) == 12)
        let records = try await store.records(["a", "b", "absent"], on: connection).sorted { $0.name < $1.name }
        #expect(records == [
            CheckpointRecord(name: "a", position: 12, state: nil, lastError: nil, heartbeatAge: nil),
            CheckpointRecord(name: "b", position: 0, state: nil, lastError: nil, heartbeatAge: nil),
        ])
        try await store.remove(["a"], on: connection)
        #expect(try await store.records(["a", "b"], on: connection).map(\.name) == ["b"])
    }

    @Test("a recorded state is fenced by the lease: a runner whose lease lapsed records while its token is the newest, not once another lease was handed out")
    func recordStateFencedByTheLease() async throws {
        let connection = try await Self.database(workerMade: false).connect()
        let store = CheckpointStore()
        try await store.ensureRow("u", on: connection)
        try await connection.query("UPDATE consumer_checkpoints SET fencing_token = 3, state = 'idle' WHERE consumer_name = 'u'")
        // The lease lapsed, nobody took it: token 3 is still the newest.
        try await connection.query("INSERT INTO consumer_assignments (consumer_name, fencing_token) VALUES ('u', 3)")
        var status = ProjectionStatus(name: "u")
        status.state = .stopped
        try await store.recordState("u", token: 3, status: status, on: connection)
        #expect(try await record("u", on: connection)?.state == "stopped")
        // Another instance claimed it (token 4) and has not committed yet: the old owner's write is refused.
        try await connection.query("UPDATE consumer_checkpoints SET state = 'catching_up' WHERE consumer_name = 'u'")
        try await connection.query("UPDATE consumer_assignments SET fencing_token = 4 WHERE consumer_name = 'u'")
        try await store.recordState("u", token: 3, status: status, on: connection)
        #expect(try await record("u", on: connection)?.state == "catching_up")
        try await store.recordState("u", token: 4, status: status, on: connection)
        #expect(try await record("u", on: connection)?.state == "stopped")
    }
}
