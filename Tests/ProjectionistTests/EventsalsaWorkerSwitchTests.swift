import EventStore
import Foundation
import Postgres
import ProjectionistApp
import Projections
import TestSupport
import TestTraits
import Testing

/// A deployment switching from eventsalsa/worker: its tables and checkpoints stay, `migrate`
/// adds what Projectionist needs, and the runtime carries on where the worker stopped.
@Suite(.database, .timeLimit(.minutes(2)))
struct EventsalsaWorkerSwitchTests {
    /// A database as eventsalsa/worker leaves it: its tables (the generator's DDL), the
    /// checkpoint of consumer `counter` and one stale-gap record of its own (written the way
    /// the worker writes them).
    func workerDatabase(_ label: String, checkpoint: Int64) async throws -> (TestDatabase, PostgresConnection) {
        let db = try await TestDatabase.fresh(label)
        let connection = try await db.connect()
        try await connection.execute(script: EventsalsaWorkerSchema.sql)
        try await connection.query(
            "INSERT INTO consumer_checkpoints (consumer_name, last_position) VALUES ('counter', $1)", [checkpoint])
        try await connection.query(
            """
            INSERT INTO consumer_gap_skips (consumer_name, worker_id, gap_position, skip_to_position, highest_visible_position, first_seen_at)
            VALUES ('counter', gen_random_uuid(), 3, 4, 5, now())
            """)
        return (db, connection)
    }

    func migrate(on connection: PostgresConnection) async throws -> ProjectionistConfiguration {
        let config = try ProjectionistConfiguration.parse("", file: "switch.yaml")
        try await Migrator(configuration: config).migrate(on: connection)
        return config
    }

    @Test("migrate on eventsalsa/worker's tables succeeds (twice), keeps their rows, and the start-up check passes")
    func migrateKeepsRows() async throws {
        let (_, connection) = try await workerDatabase("switch_migrate", checkpoint: 42)
        let config = try await migrate(on: connection)
        _ = try await migrate(on: connection)
        #expect(try await CheckpointStore().position("counter", on: connection) == 42)
        let skips = try await connection.query("SELECT gap_position, skip_to_position FROM consumer_gap_skips")
        #expect(skips.count == 1)
        #expect(try skips.first?.decode(Int64.self, at: 0) == 3)
        #expect(try skips.first?.decode(Int64.self, at: 1) == 4)
        for table in ["worker_nodes", "consumer_assignments", "worker_leader_election", "events"] {
            #expect(try await connection.query("SELECT to_regclass($1) IS NOT NULL", [table])[0].decode(Bool.self, at: 0), "\(table)")
        }
        try await StartupCheck.verify(config.schema, allowSequenceCache: false, on: connection)
    }

    @Test("after migrate, a runner carries on from the worker's checkpoint and audits a gap in rows the worker's table accepts")
    func runnerCarriesOn() async throws {
        // The worker had applied 8 events (two orders of four) when it was switched off.
        let (db, connection) = try await workerDatabase("switch_run", checkpoint: 8)
        _ = try await migrate(on: connection)
        try await connection.execute(script: CounterProjection.setupSQL)
        #expect(try await appendOrders(2, prefix: "before", on: connection) == 8)

        var options = RuntimeOptions()
        options.pollInterval = .milliseconds(100)
        options.maxPollInterval = .milliseconds(500)
        let worker = try Worker(projections: [CounterProjection(name: "counter")], database: db.runtimeConfiguration, options: options)
        let running = Task { try await worker.run() }
        defer { running.cancel() }

        let rolledBack = try await appendOrder("gap", rollback: true, on: connection)
        let last = try await appendOrders(1, prefix: "after", on: connection)
        try await eventually("the checkpoint passes the gap") { try await CheckpointStore().position("counter", on: connection) == last }
        running.cancel()
        _ = try? await running.value

        // Only the events after the worker's checkpoint were applied.
        #expect(try await CounterProjection.numbers("counter", on: connection).n == 4)
        let rows = try await connection.query(
            """
            SELECT gap_position, worker_id, skip_to_position, highest_visible_position, first_seen_at, reason
            FROM consumer_gap_skips WHERE consumer_name = 'counter' AND gap_position > 8 ORDER BY gap_position
            """)
        #expect(try rows.map { try $0.decode(Int64.self, at: 0) } == rolledBack)
        let instances = Set(try rows.map { try $0.decode(UUID.self, at: 1) })
        #expect(instances.count == 1)
        for row in rows {
            let gap = try row.decode(Int64.self, at: 0)
            #expect(try row.decode(Int64.self, at: 2) >= gap)
            #expect(try row.decode(Int64.self, at: 3) > gap)
            #expect(try row.decode(Date.self, at: 4) <= Date())
            #expect(try row.decode(String.self, at: 5) == "aborted")
        }
    }

}
