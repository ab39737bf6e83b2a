import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// Two daemons on one database with different projection lists: every unit has an owner among
/// the instances configuring it, each event is applied once per projection, each daemon warns
/// about the other's list, and `status` notes a unit that no live instance configures. With a
/// 2 s lease, a daemon stalled by the parallel phase's load would look gone: it runs alone.
@Suite(.database, .runsAlone(.severalDaemons), .timeLimit(.minutes(3)))
struct DifferentProjectionListsTests {
    static func config(_ db: TestDatabase, _ names: [String]) -> String {
        let handler = "INSERT INTO applied (projection, position) VALUES ($projection, $global_position)"
        let projections = names.map { name in
            """
              - name: \(name)
                aggregate_types: [Order]
                setup: CREATE TABLE IF NOT EXISTS applied (projection text NOT NULL, position bigint NOT NULL, PRIMARY KEY (projection, position))
                handlers:
                  OrderPlaced: \(handler)
                  OrderLineAdded: \(handler)
                  OrderConfirmed: \(handler)
            """
        }
        var config = TestDaemonConfig(db, worker: "  lease_ttl: 2s", projections: projections.joined(separator: "\n"))
        config.startupTimeout = "10s"
        return config.write()
    }

    @Test("daemons running [shared, only_a] and [shared, only_b]: all three applied exactly once, both warn, status notes only_b once its daemon stopped")
    func differentLists() async throws {
        let db = try await TestDatabase.fresh("different_lists")
        let configA = Self.config(db, ["shared", "only_a"])
        let configB = Self.config(db, ["shared", "only_b"])
        defer { TemporaryFile.remove(configA); TemporaryFile.remove(configB) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", configA]).status == 0)
        #expect(try await ProjectionistProcess.run(["migrate", "--config", configB]).status == 0)
        let connection = try await db.connect()
        let daemonA = try ProjectionistProcess.start(["run", "--config", configA], environment: ["NOTIFY_SOCKET": nil])
        let daemonB = try ProjectionistProcess.start(["run", "--config", configB], environment: ["NOTIFY_SOCKET": nil])
        defer {
            for daemon in [daemonA, daemonB] where daemon.process.isRunning { kill(daemon.pid, SIGKILL) }
        }
        try await eventually("both instances registered", timeout: .seconds(30)) {
            try await connection.query("SELECT count(*) FROM worker_nodes")[0].decode(Int64.self, at: 0) == 2
        }
        // Events only once the units have settled between the two (a few lease periods): a unit
        // left without an owner then never catches up.
        try await Task.sleep(for: .seconds(4))
        let last = try await appendOrders(30, prefix: "o", on: connection)
        try await eventually("all three projections caught up", timeout: .seconds(30)) {
            try await CheckpointStore().records(["shared", "only_a", "only_b"], on: connection).filter { $0.position == last }.count == 3
        }
        let events = try await connection.query(
            "SELECT count(*) FROM events WHERE aggregate_type = 'Order' AND global_position <= $1", [last])[0].decode(Int64.self, at: 0)
        for name in ["shared", "only_a", "only_b"] {
            let applied = try await connection.query(
                "SELECT count(*) FROM applied WHERE projection = $1", [name])[0].decode(Int64.self, at: 0)
            #expect(applied == events, "\(name): \(applied) of \(events) events applied (a duplicate would fail the batch)")
        }
        #expect(await daemonA.waitForOutput("does not configure only_a"), "A warns that B lacks only_a")
        #expect(await daemonB.waitForOutput("does not configure only_b"), "B warns that A lacks only_b")

        daemonB.signal(SIGTERM)
        #expect(await daemonB.finish().status == 0)
        let table = try await ProjectionistProcess.run(["status", "--config", configB])
        let onlyB = table.stdout.split(separator: "\n").first { $0.hasPrefix("only_b ") } ?? ""
        #expect(onlyB.contains("no live instance has it configured"), "\(table.stdout)")
        let shared = table.stdout.split(separator: "\n").first { $0.hasPrefix("shared ") } ?? ""
        #expect(!shared.contains("no live instance"), "\(table.stdout)")
        let json = try await statusJSON(configB)
        #expect(projectionState(json, "only_b")["configured_live"] as? Bool == false, "\(json)")
        #expect(projectionState(json, "shared")["configured_live"] as? Bool == true, "\(json)")
        #expect(await daemonA.waitForOutput("configures the same units again"), "A notes the lists agree once B left")
        daemonA.signal(SIGTERM)
        let exitA = await daemonA.finish()
        #expect(exitA.status == 0)
        let warnings = exitA.stderr.components(separatedBy: "does not configure only_a").count - 1
        #expect(warnings == 1, "warned once per change, not every tick: \(warnings) times")
    }
}
