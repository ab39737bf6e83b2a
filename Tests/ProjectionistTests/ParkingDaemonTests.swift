import EventStore
import Foundation
import Postgres
import Synchronization
import TestSupport
import TestTraits
import Testing

/// `on_error: park` end to end: the daemon parks an order whose event breaks a foreign key, the
/// operator lists, retries and discards its dead letters while daemons run, across kill -9,
/// partitions and two instances.
@Suite(.database, .timeLimit(.minutes(4)))
struct ParkingDaemonTests {
    /// Orders reference a customer; an order's lines count up and log their positions (a
    /// double or out-of-order apply shows).
    static func config(_ db: TestDatabase, partitions: Int = 1, retryParked: String? = nil) -> String {
        TemporaryFile.write(
            TestDaemonConfig(db, worker: "  batch_size: 50").yaml + """

                projections:
                  - name: orders
                    aggregate_types: [Order]
                    on_error: park
                    partitions: \(partitions)
                \(retryParked.map { "    retry_parked: \($0)" } ?? "")
                    setup: |
                      CREATE TABLE IF NOT EXISTS park_customers (id text PRIMARY KEY);
                      CREATE TABLE IF NOT EXISTS park_orders (id text PRIMARY KEY, customer text NOT NULL REFERENCES park_customers,
                          lines int NOT NULL DEFAULT 0, applied bigint[] NOT NULL);
                      INSERT INTO park_customers VALUES ('c1') ON CONFLICT DO NOTHING;
                    reset: TRUNCATE park_orders
                    handlers:
                      OrderPlaced: INSERT INTO park_orders (id, customer, applied) VALUES ($aggregate_id, $payload->>'customer', ARRAY[$global_position])
                      LineAdded: UPDATE park_orders SET lines = lines + 1, applied = applied || $global_position WHERE id = $aggregate_id
                """)
    }

    static func prepare(_ label: String, partitions: Int = 1, retryParked: String? = nil) async throws -> (TestDatabase, String, PostgresConnection) {
        let db = try await TestDatabase.fresh(label)
        let config = Self.config(db, partitions: partitions, retryParked: retryParked)
        let migrated = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        return (db, config, try await db.connect())
    }

    /// `dead-letters list [NAME] --json`'s entries.
    static func list(_ config: String) async throws -> [[String: Any]] {
        let output = try await ProjectionistProcess.run(["dead-letters", "list", "orders", "--json", "--config", config])
        #expect(output.status == 0, "\(output.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        return json?["dead_letters"] as? [[String: Any]] ?? []
    }

    static func caughtUp(_ units: [String], on connection: PostgresConnection) async throws -> Bool {
        let head = try await connection.query("SELECT coalesce(max(global_position), 0) FROM events")[0].decode(Int64.self, at: 0)
        let positions = try await connection.query(
            "SELECT last_position FROM consumer_checkpoints WHERE consumer_name = ANY($1::text[])", [PostgresTextArray(units)]
        ).map { try $0.decode(Int64.self, at: 0) }
        return positions.count == units.count && positions.allSatisfy { $0 == head }
    }

    static func parkedAggregates(_ config: String) async throws -> Int {
        let output = try await ProjectionistProcess.run(["status", "--json", "--config", config])
        let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        let rows = json?["projections"] as? [[String: Any]] ?? []
        return rows.compactMap { $0["parked_aggregates"] as? Int }.reduce(0, +)
    }

    @Test("one order parks on a foreign key (23503); a retry before the fix exits 1, after it applies every event once, in order, while writers append")
    func retryWorkflow() async throws {
        let (db, config, connection) = try await Self.prepare("parkflow")
        defer { TemporaryFile.remove(config) }
        let ids = (0..<81).map { "o\($0)" }
        var positions = try await ParkingWorkload.appendOrders(ids, bad: ["o40"], lines: 4, on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await eventually("caught up", timeout: .seconds(60)) { try await Self.caughtUp(["orders"], on: connection) }

        let letters = try await Self.list(config)
        #expect(letters.compactMap { $0["position"] as? Int64 ?? ($0["position"] as? Int).map(Int64.init) } == positions["o40"])
        #expect(letters.allSatisfy { $0["status"] as? String == "parked" && $0["aggregate_id"] as? String == "o40" })
        #expect(letters.compactMap { $0["attempts"] as? Int } == [1, 0, 0, 0, 0])
        #expect((letters.first?["error"] as? String)?.contains("23503") == true)
        #expect(try await Self.parkedAggregates(config) == 1)

        // Before the fix: still failing.
        let early = try await ProjectionistProcess.run(["dead-letters", "retry", "orders", "--config", config])
        #expect(early.status == 1, "\(early.stdout)\(early.stderr)")
        let kept = try await Self.list(config)
        #expect(kept.count == 5)
        #expect(kept.first?["attempts"] as? Int == 2)

        // The fix, then a retry while writers append (to the parked order too).
        try await connection.query("INSERT INTO park_customers VALUES ('nobody')")
        let appended = Mutex<[String: [Int64]]>([:])
        let writers = Task {
            let writer = try await db.connect()
            for round in 0..<40 {
                for id in ["o40", "o\(round % 81)"] {
                    let position = try await ParkingWorkload.addLine(id, on: writer)
                    appended.withLock { $0[id, default: []].append(position) }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        let retry = try await ProjectionistProcess.run(["dead-letters", "retry", "orders", "--config", config])
        #expect(retry.status == 0, "\(retry.stdout)\(retry.stderr)")
        try await writers.value
        for (id, more) in appended.withLock({ $0 }) { positions[id, default: []] += more }
        try await eventually("caught up after the retry", timeout: .seconds(60)) { try await Self.caughtUp(["orders"], on: connection) }
        #expect(try await Self.list(config).isEmpty)
        #expect(try await ParkingWorkload.applied(on: connection) == positions)
        #expect(try await Self.parkedAggregates(config) == 0)

        // Later events of that order apply normally.
        let later = try await ParkingWorkload.addLine("o40", on: connection)
        try await eventually("the later line applied", timeout: .seconds(20)) {
            try await ParkingWorkload.applied(on: connection)["o40"]?.last == later
        }
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("kill -9 and a restart: still parked, new events of the order park too; discard unparks without applying")
    func killRestartDiscard() async throws {
        let (_, config, connection) = try await Self.prepare("parkkill")
        defer { TemporaryFile.remove(config) }
        let positions = try await ParkingWorkload.appendOrders((0..<10).map { "k\($0)" }, bad: ["k3"], lines: 2, on: connection)
        let first = try ProjectionistProcess.start(["run", "--config", config])
        try await eventually("caught up", timeout: .seconds(60)) { try await Self.caughtUp(["orders"], on: connection) }
        first.signal(SIGKILL)
        _ = await first.finish()

        let second = try ProjectionistProcess.start(["run", "--config", config])
        defer { second.signal(SIGKILL) }
        let line = try await ParkingWorkload.addLine("k3", on: connection)
        try await eventually("the new line passed", timeout: .seconds(60)) { try await Self.caughtUp(["orders"], on: connection) }
        let letters = try await Self.list(config)
        #expect(letters.compactMap { ($0["position"] as? Int).map(Int64.init) } == positions["k3"]! + [line])
        #expect(try await Self.parkedAggregates(config) == 1)

        let discard = try await ProjectionistProcess.run(["dead-letters", "discard", "orders", "--aggregate", "Order/k3", "--config", config])
        #expect(discard.status == 0, "\(discard.stderr)")
        #expect((discard.stdout + discard.stderr).contains("4"), "the counts: \(discard.stdout)\(discard.stderr)")
        #expect(try await Self.list(config).isEmpty)
        // Unparked, never applied: the order has no row, and its next line is not parked.
        _ = try await ParkingWorkload.addLine("k3", on: connection)
        try await eventually("caught up again", timeout: .seconds(30)) { try await Self.caughtUp(["orders"], on: connection) }
        #expect(try await Self.list(config).isEmpty)
        #expect(try await ParkingWorkload.applied(on: connection)["k3"] == nil)
        #expect(try await Self.parkedAggregates(config) == 0)
        second.signal(SIGTERM)
        #expect(await second.finish().status == 0)
    }

    @Test("partitions and two instances: the order parks in its partition, and a retry applies it whichever instance owns the unit")
    func partitionsTwoInstances() async throws {
        let (_, config, connection) = try await Self.prepare("parkparts", partitions: 4)
        defer { TemporaryFile.remove(config) }
        var positions = try await ParkingWorkload.appendOrders((0..<30).map { "q\($0)" }, bad: ["q5", "q21"], lines: 2, on: connection)
        let one = try ProjectionistProcess.start(["run", "--config", config])
        defer { one.signal(SIGKILL) }
        let two = try ProjectionistProcess.start(["run", "--config", config])
        defer { two.signal(SIGKILL) }
        let units = (0..<4).map { "orders#\($0)/4" }
        try await eventually("every partition caught up", timeout: .seconds(60)) { try await Self.caughtUp(units, on: connection) }
        #expect(try await Self.list(config).count == 6)
        #expect(try await Self.parkedAggregates(config) == 2)
        try await connection.query("INSERT INTO park_customers VALUES ('nobody')")
        let retry = try await ProjectionistProcess.run(["dead-letters", "retry", "orders", "--config", config])
        #expect(retry.status == 0, "\(retry.stdout)\(retry.stderr)")
        positions["q5"]! += [try await ParkingWorkload.addLine("q5", on: connection)]
        try await eventually("caught up after the retry", timeout: .seconds(60)) { try await Self.caughtUp(units, on: connection) }
        #expect(try await Self.list(config).isEmpty)
        #expect(try await ParkingWorkload.applied(on: connection) == positions)
        one.signal(SIGTERM)
        two.signal(SIGTERM)
        #expect(await one.finish().status == 0)
        #expect(await two.finish().status == 0)
    }

    @Test("retry_parked: once the cause is fixed, the daemon applies the parked order by itself, each event once, in order")
    func retryParkedByTheDaemon() async throws {
        let (_, config, connection) = try await Self.prepare("parkauto", retryParked: "1s")
        defer { TemporaryFile.remove(config) }
        var positions = try await ParkingWorkload.appendOrders((0..<5).map { "r\($0)" }, bad: ["r2"], lines: 2, on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await eventually("caught up, the order parked", timeout: .seconds(60)) {
            let caughtUp = try await Self.caughtUp(["orders"], on: connection)
            let letters = try await Self.list(config)
            return caughtUp && letters.count == 3
        }
        // Retried by itself and failing meanwhile: attempts grow, nothing is applied.
        try await eventually("a failed automatic retry", timeout: .seconds(20)) {
            let letters = try await Self.list(config)
            return (letters.first?["attempts"] as? Int ?? 0) >= 2
        }
        #expect(try await ParkingWorkload.applied(on: connection)["r2"] == nil)
        try await connection.query("INSERT INTO park_customers VALUES ('nobody')")
        positions["r2"]! += [try await ParkingWorkload.addLine("r2", on: connection)]
        try await eventually("applied by the daemon's retry", timeout: .seconds(30)) {
            let letters = try await Self.list(config)
            let applied = try await ParkingWorkload.applied(on: connection)
            return letters.isEmpty && applied == positions
        }
        daemon.signal(SIGTERM)
        let exit = await daemon.finish()
        #expect(exit.status == 0)
        #expect(exit.stderr.contains("retry_parked"), "the retry is logged")
    }
}
