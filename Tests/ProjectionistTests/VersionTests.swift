import EventStore
import Foundation
import Glibc
import Postgres
import TestSupport
import TestTraits
import Testing

/// Rebuilds without downtime: a successor builds beside the live version, takes the published
/// view over in one transaction once caught up, and the old version is retired, then dropped.
@Suite(.database, .timeLimit(.minutes(3)), .serialized)
struct VersionTests {
    /// The order read model as version `name`, publishing view `order_overview`; v2 has one more
    /// column at the end, so a reader can tell the versions apart.
    static func projection(_ name: String, replaces: String? = nil, extraColumn: Bool = false) -> String {
        let table = OrderWorkload.readModelSQL.replacingOccurrences(of: "order_overview_v1", with: name)
        let setup = extraColumn ? table + ";\nALTER TABLE \(name) ADD COLUMN IF NOT EXISTS built_by text DEFAULT '\(name)'" : table
        return """
              - name: \(name)
                aggregate_types: [Order]
                publish: order_overview
            \(replaces.map { "    replaces: \($0)" } ?? "")
                drop: DROP TABLE \(name)
                setup: |
                  \(setup.replacingOccurrences(of: "\n", with: "\n      "))
                handlers:
                  OrderPlaced: |
                    INSERT INTO \(name) (order_id, customer_id, status, currency, total_cents, line_count, version)
                    VALUES ($aggregate_id, $payload->>'customer_id', 'pending', $payload->>'currency', 0, 0, $aggregate_version)
                    ON CONFLICT (order_id) DO NOTHING
                  OrderLineAdded: |
                    UPDATE \(name)
                    SET total_cents = total_cents + ($payload->>'quantity')::bigint * ($payload->>'unit_price_cents')::bigint,
                        line_count = line_count + ($payload->>'quantity')::int, version = $aggregate_version
                    WHERE order_id = $aggregate_id AND version < $aggregate_version
                  OrderConfirmed: UPDATE \(name) SET status = 'confirmed', version = $aggregate_version WHERE order_id = $aggregate_id AND version < $aggregate_version
            """
    }

    static func config(_ db: TestDatabase, _ projections: String...) -> String {
        TestDaemonConfig(db, worker: "  batch_size: 200\n  lease_ttl: 2s", projections: projections.joined(separator: "\n")).write()
    }

    /// How many columns the published view has: 7 while v1 serves it, 8 once v2 does.
    static func viewColumns(on connection: PostgresConnection) async throws -> Int {
        Int(try await connection.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'order_overview'")[0].decode(Int64.self, at: 0))
    }

    /// Queries the view every few milliseconds until cancelled: errors, the longest query, and
    /// the column counts it saw in order.
    final class Reader: @unchecked Sendable {
        let lock = NSLock()
        var errors: [String] = []
        var longest: Duration = .zero
        var sawColumns: [Int] = []
        var task: Task<Void, Never>?

        init(_ db: TestDatabase) {
            self.task = Task {
                guard let connection = try? await db.connect() else { return }
                let clock = ContinuousClock()
                while !Task.isCancelled {
                    let started = clock.now
                    do {
                        let row = try await connection.query("SELECT * FROM order_overview LIMIT 1")
                        let took = clock.now - started
                        self.lock.withLock {
                            self.longest = max(self.longest, took)
                            let columns = row.columnCount
                            if self.sawColumns.last != columns { self.sawColumns.append(columns) }
                        }
                    } catch {
                        // `stop` cancels the query in flight (57014): that is the test ending, not a reader's error.
                        if Task.isCancelled { break }
                        self.lock.withLock { self.errors.append("\(error)") }
                    }
                    try? await Task.sleep(for: .milliseconds(3))
                }
            }
        }

        func stop() async {
            self.task?.cancel()
            await self.task?.value
        }
    }

    static func state(_ config: String, _ name: String) async throws -> [String: Any] {
        projectionState(try await statusJSON(config), name)
    }

    @Test("v2 builds beside the live v1, takes the view over once caught up, v1 is retired and dropped; a reader sees v1, then v2, never an error")
    func rebuildWithoutDowntime() async throws {
        let db = try await TestDatabase.fresh("versions")
        let v1Only = Self.config(db, Self.projection("order_overview_v1"))
        let both = Self.config(db, Self.projection("order_overview_v1"), Self.projection("order_overview_v2", replaces: "order_overview_v1", extraColumn: true))
        defer { TemporaryFile.remove(v1Only); TemporaryFile.remove(both) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", v1Only]).status == 0)
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(3_000, on: connection)
        var daemon = try ProjectionistProcess.start(["run", "--config", v1Only])
        var last = try await EventStore().latestPosition(on: connection)
        try await eventually("v1 caught up") { try await Self.state(v1Only, "order_overview_v1")["position"] as? Int == Int(last) }
        #expect(try await Self.viewColumns(on: connection) == 7)
        let reader = Reader(db)

        // Deploy v2 beside v1: migrate creates its table, the daemon builds it from 0 while v1 serves.
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", both])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        daemon = try ProjectionistProcess.start(["run", "--config", both])
        last = try await appendOrders(20, prefix: "during", on: connection)  // v1 keeps up meanwhile
        let wait = try await ProjectionistProcess.run(["wait", "order_overview_v2", "--timeout", "60s", "--config", both])
        #expect(wait.status == 0, "\(wait.stderr)")
        #expect(wait.stdout.contains("order_overview_v2"))
        try await eventually("v1 retired, replaced by v2") {
            let v1 = try await Self.state(both, "order_overview_v1")
            return v1["state"] as? String == "retired" && v1["successor"] as? String == "order_overview_v2"
        }
        #expect(try await Self.viewColumns(on: connection) == 8)
        last = try await appendOrders(10, prefix: "after", on: connection)
        try await eventually("v2 serves the new events through the view") {
            let count = try await connection.query("SELECT count(*) FROM order_overview WHERE order_id LIKE 'after%'")[0].decode(Int64.self, at: 0)
            return count == 10
        }
        await reader.stop()
        #expect(reader.errors.isEmpty, "reader errors: \(reader.errors.prefix(3))")
        #expect(reader.sawColumns == [7, 8], "the reader saw v1 until the swap and v2 after: \(reader.sawColumns)")
        print("reader's longest query across the swap: \(reader.longest)")
        // v1 stopped at the swap: it does not apply the events after it.
        let v1Position = try await Self.state(both, "order_overview_v1")["position"] as? Int
        #expect(v1Position != nil, "status lost v1's position")
        if let v1Position { #expect(v1Position < Int(last)) }

        // drop: refused for the live v2, done for the retired v1.
        let refused = try await ProjectionistProcess.run(["drop", "order_overview_v2", "--config", both])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("is live"))
        let dropped = try await ProjectionistProcess.run(["drop", "order_overview_v1", "--config", both])
        #expect(dropped.status == 0, "\(dropped.stderr)")
        #expect(try await connection.query("SELECT to_regclass('order_overview_v1') IS NULL")[0].decode(Bool.self, at: 0))
        #expect(try await connection.query("SELECT count(*) FROM consumer_checkpoints WHERE consumer_name = 'order_overview_v1'")[0].decode(Int64.self, at: 0) == 0)
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("kill -9 while the swap waits on a reader, then right after it: a restart finds the same state and finishes")
    func killedAroundTheSwap() async throws {
        let db = try await TestDatabase.fresh("versions_kill")
        let both = Self.config(db, Self.projection("order_overview_v1"), Self.projection("order_overview_v2", replaces: "order_overview_v1", extraColumn: true))
        defer { TemporaryFile.remove(both) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", both]).status == 0)
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(500, on: connection)
        // A reader holds the view in an open transaction: the swap cannot take it (lock_timeout 50 ms).
        let blocker = try await db.connect()
        try await blocker.query("BEGIN")
        _ = try await blocker.query("SELECT * FROM order_overview LIMIT 1")
        var daemon = try ProjectionistProcess.start(["run", "--config", both])
        let last = try await EventStore().latestPosition(on: connection)
        try await eventually("both versions caught up") {
            let v1 = try await Self.state(both, "order_overview_v1"), v2 = try await Self.state(both, "order_overview_v2")
            return v1["position"] as? Int == Int(last) && v2["position"] as? Int == Int(last)
        }
        #expect(await daemon.waitForOutput("The swap waits for readers' queries"), "a swap attempt refused by the reader's lock: \(daemon.stderr)")
        kill(daemon.pid, SIGKILL)
        _ = await daemon.finish()
        #expect(try await Self.state(both, "order_overview_v1")["state"] as? String != "retired", "nothing half-done")
        #expect(try await Self.viewColumns(on: connection) == 7)
        try await blocker.query("COMMIT")

        daemon = try ProjectionistProcess.start(["run", "--config", both])
        try await eventually("the restarted daemon swaps") { try await Self.state(both, "order_overview_v1")["state"] as? String == "retired" }
        kill(daemon.pid, SIGKILL)
        _ = await daemon.finish()
        let v1Position = try await Self.state(both, "order_overview_v1")["position"] as? Int
        daemon = try ProjectionistProcess.start(["run", "--config", both])
        let after = try await appendOrders(5, prefix: "late", on: connection)
        try await eventually("v2 applies new events after the restart") { try await Self.state(both, "order_overview_v2")["position"] as? Int == Int(after) }
        #expect(try await Self.state(both, "order_overview_v1")["state"] as? String == "retired")
        #expect(try await Self.state(both, "order_overview_v1")["position"] as? Int == v1Position, "a retired version never runs again")
        #expect(try await Self.viewColumns(on: connection) == 8)
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("wait: exit 75 on timeout, 64 for an unknown name, 0 once caught up")
    func waitExitCodes() async throws {
        let db = try await TestDatabase.fresh("versions_wait")
        let config = Self.config(db, Self.projection("order_overview_v1"))
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        _ = try await appendOrders(5, prefix: "w", on: connection)
        let timedOut = try await ProjectionistProcess.run(["wait", "order_overview_v1", "--timeout", "1s", "--config", config])
        #expect(timedOut.status == 75)
        #expect(timedOut.stderr.contains("timed out"))
        let unknown = try await ProjectionistProcess.run(["wait", "nope", "--config", config])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("order_overview_v1"))
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        let caughtUp = try await ProjectionistProcess.run(["wait", "order_overview_v1", "--timeout", "30s", "--config", config])
        #expect(caughtUp.status == 0, "\(caughtUp.stderr)")
        #expect(caughtUp.stdout.contains("caught up"))
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
    }

    @Test("a published view that clashes with an existing table: migrate exits 78 naming it and creates nothing")
    func viewClashesWithTable() async throws {
        let db = try await TestDatabase.fresh("versions_clash")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE order_overview (id int)")
        let config = Self.config(db, Self.projection("order_overview_v1"))
        defer { TemporaryFile.remove(config) }
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 78)
        #expect(migrate.stderr.contains("order_overview") && migrate.stderr.contains("clashes"), "\(migrate.stderr)")
        #expect(try await connection.query("SELECT to_regclass('order_overview_v1') IS NULL")[0].decode(Bool.self, at: 0), "one transaction: nothing half-done")
    }
}
