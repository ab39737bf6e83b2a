import EventStore
import Foundation
import Glibc
import Postgres
import TestSupport
import TestTraits
import Testing

/// Several `projectionist run` processes with one configuration on one database, each test
/// asserting that every event was applied exactly once by a non-idempotent projection (one
/// `applied` row per application, no version guard).
@Suite(.database, .runsAlone(.severalDaemons), .timeLimit(.minutes(3)), .serialized)
struct ScaleOutTests {
    /// A configuration with the counting projection in `partitions` units.
    static func config(_ connection: String, partitions: Int, pooling: String = "session", batchSize: Int = 200) -> String {
        let handler = "INSERT INTO applied (projection, position) VALUES ($projection, $global_position)"
        var config = TestDaemonConfig(
            url: connection, pooling: pooling, worker: "  batch_size: \(batchSize)\n  lease_ttl: 2s",
            projections: """
              - name: counted
                partitions: \(partitions)
                aggregate_types: [Order]
                setup: CREATE TABLE IF NOT EXISTS applied (projection text NOT NULL, position bigint NOT NULL)
                handlers:
                  OrderPlaced: \(handler)
                  OrderLineAdded: \(handler)
                  OrderConfirmed: \(handler)
            """)
        config.startupTimeout = "10s"
        return config.write()
    }

    /// The daemons under test, stopped (SIGKILL, then SIGCONT for a frozen one) when the test ends.
    final class Daemons: @unchecked Sendable {
        var processes: [RunningProcess] = []
        let config: String
        init(config: String) { self.config = config }

        @discardableResult
        func start() throws -> RunningProcess {
            let process = try ProjectionistProcess.start(["run", "--config", self.config], environment: ["NOTIFY_SOCKET": nil])
            self.processes.append(process)
            return process
        }

        func process(pid: Int32) -> RunningProcess? { self.processes.first { $0.pid == pid } }

        deinit {
            for process in self.processes where process.process.isRunning {
                kill(process.pid, SIGCONT)
                kill(process.pid, SIGKILL)
            }
            TemporaryFile.remove(self.config)
        }
    }

    struct Unit: Equatable {
        var partition: String
        var ownerPID: Int32?
        var position: Int
        var state: String
    }

    /// Each unit of `counted` as `status --json` shows it.
    static func units(_ config: String) async throws -> [Unit] {
        let json = try await statusJSON(config)
        let rows = (json["projections"] as? [[String: Any]]) ?? []
        return rows.map { row in
            let host = row["owner_host"] as? String
            let pid = host.flatMap { $0.split(separator: ":").last }.flatMap { Int32($0) }
            return Unit(
                partition: row["partition"] as? String ?? "-", ownerPID: pid, position: row["position"] as? Int ?? -1,
                state: row["state"] as? String ?? "")
        }
    }

    static func expectExactlyOnce(_ connection: PostgresConnection) async throws {
        let row = try await connection.query(
            """
            SELECT (SELECT count(*) FROM events WHERE event_type IN ('OrderPlaced', 'OrderLineAdded', 'OrderConfirmed')),
                   (SELECT count(*) FROM applied), (SELECT count(DISTINCT position) FROM applied)
            """)[0]
        let expected = try row.decode(Int64.self, at: 0)
        #expect(try row.decode(Int64.self, at: 1) == expected, "applications (duplicates show here)")
        #expect(try row.decode(Int64.self, at: 2) == expected, "distinct positions (missing events show here)")
    }

    static func caughtUp(_ config: String, head: Int64) async throws {
        try await eventually("every unit caught up", timeout: .seconds(90), every: .milliseconds(200)) {
            try await Self.units(config).allSatisfy { $0.position == Int(head) }
        }
    }

    static func prepare(_ label: String, partitions: Int, orders: Int) async throws -> (TestDatabase, PostgresConnection, String) {
        let db = try await TestDatabase.fresh(label)
        let config = Self.config(db.connectionString, partitions: partitions)
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(orders, on: connection)
        return (db, connection, config)
    }

    /// Three daemons, each owning one of three units, catching up; and a unit with progress.
    static func threeCatchingUp(_ config: String) async throws -> (Daemons, Unit) {
        let daemons = Daemons(config: config)
        for _ in 0..<3 { try daemons.start() }
        try await eventually("each daemon owns one unit and they are catching up", timeout: .seconds(30)) {
            let units = try await Self.units(config)
            return Set(units.compactMap(\.ownerPID)).count == 3 && units.contains { $0.position > 0 }
        }
        return (daemons, try await Self.units(config).first { $0.position > 0 }!)
    }

    @Test("kill -9 of an owner mid catch-up: its unit is taken over after the lease and every event is applied once")
    func killedOwner() async throws {
        let (_, connection, config) = try await Self.prepare("scale_kill", partitions: 3, orders: 6_000)
        let (daemons, victim) = try await Self.threeCatchingUp(config)
        kill(victim.ownerPID!, SIGKILL)
        try await eventually("another daemon owns the victim's unit", timeout: .seconds(20)) {
            let unit = try await Self.units(config).first { $0.partition == victim.partition }
            return unit?.ownerPID != nil && unit?.ownerPID != victim.ownerPID
        }
        try await Self.caughtUp(config, head: try await EventStore().latestPosition(on: connection))
        try await Self.expectExactlyOnce(connection)
    }

    @Test("SIGSTOP of an owner past its lease: another daemon takes its unit while it is frozen; after SIGCONT it commits nothing stale and steps down")
    func frozenOwner() async throws {
        let (_, connection, config) = try await Self.prepare("scale_stop", partitions: 3, orders: 6_000)
        let (daemons, victim) = try await Self.threeCatchingUp(config)
        let frozenPID = victim.ownerPID!
        kill(frozenPID, SIGSTOP)
        // Taken over while the old owner is still frozen: lease (2 s) plus a tick or two.
        try await eventually("another daemon owns the frozen daemon's unit", timeout: .seconds(10)) {
            let unit = try await Self.units(config).first { $0.partition == victim.partition }
            return unit?.ownerPID != nil && unit?.ownerPID != frozenPID
        }
        let takenOver = try await Self.units(config).first { $0.partition == victim.partition }!
        _ = try await Seeder.seedOrders(300, from: 6_000, on: connection)
        do {
            try await eventually("the new owner moves the unit on while the old one is frozen", timeout: .seconds(30)) {
                try await Self.units(config).first { $0.partition == victim.partition }!.position > takenOver.position
            }
        } catch {
            // What held the unit: the sessions of the database, then each daemon's log.
            let sessions = try await connection.query(
                """
                SELECT pid, application_name, state, wait_event_type, wait_event, left(query, 120) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                """)
            for row in sessions {
                let pid = (try? row.decode(Int32.self, at: 0)).map(String.init) ?? "-"
                print("session: " + ([pid] + (1..<6).map { ((try? row.decode(String?.self, at: $0)) ?? nil) ?? "-" }).joined(separator: " | "))
            }
            print("status: \(try await statusJSON(config))")
            for process in daemons.processes where process.pid != frozenPID { print("daemon \(process.pid):\n\(process.stderr.suffix(3000))") }
            kill(frozenPID, SIGCONT)
            throw error
        }
        kill(frozenPID, SIGCONT)
        try await Self.caughtUp(config, head: try await EventStore().latestPosition(on: connection))
        try await Self.expectExactlyOnce(connection)
        // It woke, found its batch transaction ended and its token stale, and runs as one of three again.
        #expect(daemons.process(pid: frozenPID)?.process.isRunning == true)
        try await eventually("three daemons share the units again", timeout: .seconds(20)) {
            Set(try await Self.units(config).compactMap(\.ownerPID)).count == 3
        }
        _ = try await Seeder.seedOrders(500, from: 6_300, on: connection)
        try await Self.caughtUp(config, head: try await EventStore().latestPosition(on: connection))
        try await Self.expectExactlyOnce(connection)
    }

    @Test("a fourth daemon joins and takes its share within a lease; SIGTERM hands a daemon's units over at once")
    func joinAndHandOver() async throws {
        let (_, connection, config) = try await Self.prepare("scale_join", partitions: 4, orders: 3_000)
        let daemons = Daemons(config: config)
        for _ in 0..<3 { try daemons.start() }
        try await eventually("three daemons share four units 2 + 1 + 1", timeout: .seconds(30)) {
            let owners = try await Self.units(config).compactMap(\.ownerPID)
            return owners.count == 4 && Set(owners).count == 3
        }
        let fourth = try daemons.start()
        let clock = ContinuousClock()
        let joined = clock.now
        try await eventually("every daemon owns one unit", timeout: .seconds(15), every: .milliseconds(100)) {
            let owners = try await Self.units(config).compactMap(\.ownerPID)
            return owners.count == 4 && Set(owners).count == 4 && owners.contains(fourth.pid)
        }
        print("join: shares even after \(clock.now - joined)")
        // SIGTERM: the batch finishes, the lease is released, another daemon claims the unit.
        let leaving = try await Self.units(config).first { $0.ownerPID != nil }!
        let signalled = clock.now
        kill(leaving.ownerPID!, SIGTERM)
        try await eventually("another daemon owns the unit", timeout: .seconds(10), every: .milliseconds(20)) {
            let unit = try await Self.units(config).first { $0.partition == leaving.partition }
            return unit?.ownerPID != nil && unit?.ownerPID != leaving.ownerPID
        }
        let handover = clock.now - signalled
        print("handover after SIGTERM: \(handover)")
        #expect(handover < .seconds(2), "handover took \(handover): the lease is released, not left to run out")
        #expect(await daemons.process(pid: leaving.ownerPID!)!.finish().status == 0)
        _ = try await Seeder.seedOrders(500, from: 3_000, on: connection)
        try await Self.caughtUp(config, head: try await EventStore().latestPosition(on: connection))
        try await Self.expectExactlyOnce(connection)
    }

    @Test("through PgBouncer in transaction mode (pooling: transaction): two daemons, one killed, every event applied once, still once after it settles, nothing session-bound")
    func throughPgBouncer() async throws {
        let db = try await TestDatabase.fresh("scale_pgbouncer")
        let direct = Self.config(db.connectionString, partitions: 2)
        #expect(try await ProjectionistProcess.run(["migrate", "--config", direct]).status == 0)
        TemporaryFile.remove(direct)
        let poolSize = 6
        let bouncer = try await PgBouncer.start(for: db, poolMode: "transaction", defaultPoolSize: poolSize)
        defer { bouncer.stop() }
        let config = Self.config(bouncer.connectionString, partitions: 2, pooling: "transaction")
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(2_000, on: connection)
        let daemons = Daemons(config: config)
        let first = try daemons.start()
        let second = try daemons.start()
        // Session-bound state (a LISTEN, an advisory lock) in this test's database (other suites run
        // beside it), looked for all along, not once at the end.
        let sessionBound = Task {
            var seen: [String] = []
            while !Task.isCancelled {
                let row = try await connection.query(
                    """
                    SELECT (SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                            WHERE l.locktype = 'advisory' AND d.datname = current_database()),
                           (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%')
                    """)[0]
                let (locks, listens) = (try row.decode(Int64.self, at: 0), try row.decode(Int64.self, at: 1))
                if locks > 0 || listens > 0 { seen.append("\(locks) advisory lock(s), \(listens) LISTEN(s)") }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return seen
        }
        try await eventually("two daemons own one unit each", timeout: .seconds(30)) {
            Set(try await Self.units(config).compactMap(\.ownerPID)).count == 2
        }
        kill(first.pid, SIGKILL)
        _ = try await Seeder.seedOrders(1_000, from: 2_000, on: connection)
        try await Self.caughtUp(config, head: try await EventStore().latestPosition(on: connection))
        try await Self.expectExactlyOnce(connection)
        // Settled: several lease periods (lease_ttl 2s) later, with the survivor still running, the
        // count has not moved (no late re-application after the takeover).
        let applied = { try await connection.query("SELECT count(*) FROM applied")[0].decode(Int64.self, at: 0) }
        let settled = try await applied()
        try await Task.sleep(for: .seconds(6))
        #expect(try await applied() == settled, "applications after everything had caught up")
        try await Self.expectExactlyOnce(connection)
        second.signal(SIGTERM)
        #expect(await second.finish().status == 0)
        sessionBound.cancel()
        let sessionState = try await sessionBound.value
        #expect(sessionState.isEmpty, "session-bound state through the pooler: \(sessionState.prefix(3))")

        // No prepared statement on any server connection the pool holds (they are per session:
        // visible only from inside each). One client per pool slot, each in a transaction, holds
        // every server connection at once; the pool's connections must all be among them.
        let pooled = Set(
            try await connection.query(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).map { try $0.decode(Int32.self, at: 0) })
        var clients: [PostgresConnection] = []
        var probed: Set<Int32> = []
        var prepared: [String] = []
        for _ in 0..<poolSize {
            let client = try await bouncer.connect()
            clients.append(client)
            try await client.query("BEGIN")
            let row = try await client.query(
                "SELECT pg_backend_pid(), (SELECT coalesce(string_agg(name, ', '), '') FROM pg_prepared_statements)")[0]
            probed.insert(try row.decode(Int32.self, at: 0))
            let names = try row.decode(String.self, at: 1)
            if !names.isEmpty { prepared.append(names) }
        }
        for client in clients {
            try await client.query("ROLLBACK")
            await client.close()
        }
        #expect(!pooled.isEmpty && pooled.isSubset(of: probed), "server connections not probed: \(pooled.subtracting(probed))")
        #expect(prepared.isEmpty, "prepared statements left on the pool's server connections: \(prepared)")
    }
}
