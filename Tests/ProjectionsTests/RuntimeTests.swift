import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(2)))
struct RuntimeTests {
    @Test("a scoped projection reaches the head with other aggregate types interleaved")
    func scoped() async throws {
        let db = try await projectionDatabase("scoped")
        let connection = try await db.connect()
        let store = EventStore()
        try await connection.transaction { tx in
            for index in 0..<300 {
                let type = index % 3 == 0 ? "Order" : (index % 3 == 1 ? "Invoice" : "Shipment")
                let event = Event(aggregateType: type, aggregateID: "a\(index)", eventType: "\(type)Created", payload: Array("{}".utf8))
                try await store.append([event], expected: .noStream, in: tx)
            }
            // The last events are out of scope: the checkpoint must still reach the head.
            try await store.append([Event(aggregateType: "Invoice", aggregateID: "tail", eventType: "X", payload: [1])], expected: .noStream, in: tx)
        }
        let last = try await head(on: connection)
        let running = try RunningWorker(db, [CounterProjection(name: "orders", aggregateTypes: ["Order"])], options: testOptions { $0.batchSize = 37 })
        try await eventually("the scoped checkpoint reaches the head") { try await checkpoint("orders", on: connection) == last }
        await running.stop()
        #expect(try await CounterProjection.numbers("orders", on: connection).n == 100)
        let types = try await connection.query(
            "SELECT DISTINCT e.aggregate_type FROM counter_log l JOIN events e ON e.global_position = l.position")
        #expect(try types.map { try $0.decode(String.self, at: 0) } == ["Order"])
    }

    @Test("reset to 0 rebuilds, rewind to N re-applies from N, both while running")
    func resetAndRewind() async throws {
        let db = try await projectionDatabase("reset")
        let connection = try await db.connect()
        for index in 0..<20 { try await appendOrder("o\(index)", on: connection) }
        let last = try await head(on: connection)
        let projections: [any Projection] = [CounterProjection(name: "counter"), OrderOverviewProjection()]
        let running = try RunningWorker(db, projections)
        try await eventually("caught up") {
            let counter = try await checkpoint("counter", on: connection)
            let overview = try await checkpoint("order_overview_v1", on: connection)
            return counter == last && overview == last
        }
        // Damage the read model, then rebuild it from 0 while the worker runs.
        try await connection.query("UPDATE order_overview_v1 SET total_cents = -1")
        let before = try await ProjectionReset.reset(OrderOverviewProjection(), to: 0, schema: Schema(), on: connection)
        #expect(before.lowest == last)
        try await ProjectionReset.reset(CounterProjection(name: "counter"), to: 0, schema: Schema(), on: connection)
        try await eventually("rebuilt") {
            let counter = try await checkpoint("counter", on: connection)
            let overview = try await checkpoint("order_overview_v1", on: connection)
            return counter == last && overview == last
        }
        #expect(try await OrderWorkload.oracleDifferences(on: connection) == 0)
        #expect(try await CounterProjection.numbers("counter", on: connection).n == 80)

        // Rewind (no reset action): the version guard keeps order_overview exact; the counter
        // re-applies exactly the events after N, once each.
        let rewindTo = last - 10
        try await ProjectionReset.reset(OrderOverviewProjection(), to: rewindTo, schema: Schema(), on: connection)
        try await ProjectionReset.reset(CounterProjection(name: "counter"), to: rewindTo, schema: Schema(), on: connection)
        try await eventually("caught up after the rewind") {
            let counter = try await checkpoint("counter", on: connection)
            let overview = try await checkpoint("order_overview_v1", on: connection)
            return counter == last && overview == last
        }
        await running.stop()
        #expect(try await OrderWorkload.oracleDifferences(on: connection) == 0)
        let counted = try await connection.query(
            "SELECT count(*) FILTER (WHERE position > $1), count(*) FROM counter_log WHERE projection = 'counter'", [rewindTo])[0]
        #expect(try counted.decode(Int64.self, at: 0) == 20)  // the 10 after N, twice
        #expect(try counted.decode(Int64.self, at: 1) == 90)
    }

    @Test("a position sequence with CACHE 20 is refused at start, naming the sequence")
    func sequenceCache() async throws {
        let db = try await projectionDatabase("cache")
        let connection = try await db.connect()
        try await connection.query("ALTER SEQUENCE events_global_position_seq CACHE 20")
        let worker = try Worker(projections: [CounterProjection(name: "c")], database: db.runtimeConfiguration, options: testOptions())
        let error = try await #require(throws: SchemaError.self) { try await worker.run() }
        #expect(error.description.contains("events_global_position_seq"))
        #expect(error.description.contains("CACHE 20"))
        var allowed = testOptions()
        allowed.allowSequenceCache = true
        let tolerant = try Worker(projections: [CounterProjection(name: "c")], database: db.runtimeConfiguration, options: allowed)
        let task = Task { try await tolerant.run() }
        try await eventually("starts when allowed") { tolerant.board.status("c")?.state == .idle }
        task.cancel()
        try await task.value
    }

    @Test("missing tables and columns are refused at start, saying to run migrate")
    func missingSchema() async throws {
        let db = try await TestDatabase.fresh("noschema")
        let worker = try Worker(projections: [CounterProjection(name: "c")], database: db.runtimeConfiguration, options: testOptions())
        let error = try await #require(throws: SchemaError.self) { try await worker.run() }
        #expect(error.description.contains("events"))
        #expect(error.description.contains("migrate"))
        let migrated = try await projectionDatabase("nocolumn")
        let connection = try await migrated.connect()
        try await connection.query("ALTER TABLE consumer_checkpoints DROP COLUMN gap_holder")
        let other = try Worker(projections: [CounterProjection(name: "c")], database: migrated.runtimeConfiguration, options: testOptions())
        let columnError = try await #require(throws: SchemaError.self) { try await other.run() }
        #expect(columnError.description.contains("gap_holder"))
    }

    @Test("duplicate projection names are refused")
    func duplicateNames() {
        #expect(throws: SchemaError.self) {
            try Worker(projections: [CounterProjection(name: "x"), CounterProjection(name: "x")], database: ConnectionConfiguration(), options: RuntimeOptions())
        }
    }

    @Test("checkpoint rows are created on first start; state columns are refreshed; stopped after cancel")
    func checkpointRowsAndState() async throws {
        let db = try await projectionDatabase("rows")
        let connection = try await db.connect()
        let running = try RunningWorker(db, [CounterProjection(name: "fresh")])
        try await eventually("row created and idle recorded") { try await record("fresh", on: connection)?.state == "idle" }
        await running.stop()
        let stored = try #require(try await record("fresh", on: connection))
        #expect(stored.state == "stopped")
        #expect(stored.heartbeatAge != nil)
    }

    @Test("a runner whose lease lapsed (renewals blocked) while nobody took it still records stopped when cancelled")
    func stoppedAfterLapsedLease() async throws {
        let db = try await projectionDatabase("lapsed")
        let connection = try await db.connect()
        let running = try RunningWorker(db, [CounterProjection(name: "lapsing")], options: testOptions { $0.leaseTTL = .seconds(2) })
        try await eventually("idle recorded") { try await record("lapsing", on: connection)?.state == "idle" }
        // Renewals wait on this lock (reads of the table do not): the lease runs out and the
        // runner stands by, with no other instance to take the unit.
        let blocker = try await db.connect()
        try await blocker.query("BEGIN")
        try await blocker.query("LOCK TABLE consumer_assignments IN EXCLUSIVE MODE")
        try await eventually("standing by", timeout: .seconds(10)) { running.status("lapsing")?.state == .standby }
        // The runner records its last state before the coordinator releases the leases, which
        // waits for the lock: let go of it once the runner stopped.
        let stopping = Task { await running.stop() }
        try await eventually("the runner stopped", timeout: .seconds(10)) { running.status("lapsing")?.state == .stopped }
        try await blocker.query("ROLLBACK")
        await stopping.value
        #expect(try await record("lapsing", on: connection)?.state == "stopped")
    }

    @Test("two workers on one database: one owns each projection, the other stands by and takes over")
    func standby() async throws {
        let db = try await projectionDatabase("standby")
        let connection = try await db.connect()
        let first = try RunningWorker(db, [CounterProjection(name: "counter")])
        try await eventually("first owns it") { first.status("counter")?.state == .idle }
        let second = try RunningWorker(db, [CounterProjection(name: "counter")])
        try await eventually("second stands by") { second.status("counter")?.state == .standby }
        try await appendOrder("a", lines: 0, on: connection)
        await first.stop()
        let positions = try await appendOrder("b", lines: 0, on: connection)
        try await eventually("second takes over") { try await checkpoint("counter", on: connection) == positions.last! }
        await second.stop()
        #expect(try await CounterProjection.numbers("counter", on: connection).n == 4)
    }

}
