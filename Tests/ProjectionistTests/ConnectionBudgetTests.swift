import Foundation
import Postgres
import Synchronization
import TestSupport
import TestTraits
import Testing

/// `database.max_connections` against the real daemon: every server connection `run` holds
/// (batches, read-ahead, LISTEN, leases, head probe, lag sampler, `/status`) is counted, by the
/// role the daemon logs in as, in `pg_stat_activity`.
@Suite(.database, .runsAlone(.manyProjections), .timeLimit(.minutes(4)))
struct ConnectionBudgetTests {
    /// A database owned by a role of its own (so `pg_stat_activity.usename` picks out the daemon's
    /// backends), with the schema migrated by that role.
    struct Setup {
        let db: TestDatabase
        let role: String
        /// The daemon's connection string: `db`'s, logging in as `role`.
        var daemonURL: String { "\(self.db.connectionString) user=\(self.role)" }
    }

    static func setup(_ label: String, connectionLimit: Int? = nil) async throws -> Setup {
        let db = try await TestDatabase.fresh(label)
        let role = "r_\(db.name)"
        let admin = try await db.connect()
        let limit = connectionLimit.map { " CONNECTION LIMIT \($0)" } ?? ""
        try await admin.query("CREATE ROLE \(role) LOGIN\(limit)")
        try await admin.query("ALTER DATABASE \(db.name) OWNER TO \(role)")
        try await admin.query("ALTER SCHEMA public OWNER TO \(role)")
        await admin.close()
        return Setup(db: db, role: role)
    }

    /// A configuration with `count` counting projections (each `UPDATE counts SET n = n + 1` per
    /// event: applying an event twice shows).
    static func config(_ setup: Setup, projections count: Int, maxConnections: Int?, listen: String = "\"\"", batchSize: Int = 100) -> String {
        let projections = (0..<count).map { index in
            """
              - name: c\(index)
                setup: |
                  CREATE TABLE IF NOT EXISTS counts (name text PRIMARY KEY, n bigint NOT NULL);
                  INSERT INTO counts VALUES ('c\(index)', 0) ON CONFLICT DO NOTHING;
                reset: UPDATE counts SET n = 0 WHERE name = 'c\(index)'
                handlers:
                  Ticked: UPDATE counts SET n = n + 1 WHERE name = 'c\(index)'
            """
        }
        var config = TestDaemonConfig(
            url: setup.daemonURL, worker: "  batch_size: \(batchSize)", listen: listen, projections: projections.joined(separator: "\n"))
        config.startupTimeout = "10s"
        config.database = maxConnections.map { "  max_connections: \($0)" } ?? ""
        return config.write()
    }

    /// Samples the daemon's backends every ~20 ms until stopped; the highest count seen, and
    /// what those backends were (`atPeak`: pid, start, state, application, query).
    final class Sampler: Sendable {
        private let counts = Mutex((peak: 0, samples: 0, atPeak: [String]()))
        private let task = Mutex<Task<Void, Never>?>(nil)

        init(_ role: String, on connection: PostgresConnection) {
            let running = Task { [counts = self] in
                while !Task.isCancelled {
                    if let rows = try? await connection.query(
                        """
                        SELECT pid::text || ' ' || to_char(backend_start, 'HH24:MI:SS.US') || ' ' || coalesce(state, '?') || ' '
                            || application_name || ' ' || left(query, 80)
                        FROM pg_stat_activity WHERE usename = $1 ORDER BY backend_start
                        """, [role]), let backends = try? rows.map({ try $0.decode(String.self, at: 0) })
                    {
                        counts.record(backends)
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            self.task.withLock { $0 = running }
        }

        private func record(_ backends: [String]) {
            self.counts.withLock {
                if backends.count > $0.peak { $0.atPeak = backends }
                $0 = (max($0.peak, backends.count), $0.samples + 1, $0.atPeak)
            }
        }

        /// The backends of the first sample with the peak count.
        var atPeak: [String] { self.counts.withLock { $0.atPeak } }

        var samples: Int { self.counts.withLock { $0.samples } }

        func stop() async -> Int {
            let running = self.task.withLock { $0 }
            running?.cancel()
            await running?.value
            return self.counts.withLock { $0.peak }
        }
    }

    /// (lowest, highest) count over every projection.
    static func counts(on connection: PostgresConnection) async throws -> (low: Int64, high: Int64, rows: Int) {
        let rows = try await connection.query("SELECT coalesce(min(n), -1), coalesce(max(n), -1), count(*) FROM counts")[0]
        return (try rows.decode(Int64.self, at: 0), try rows.decode(Int64.self, at: 1), Int(try rows.decode(Int64.self, at: 2)))
    }

    static func migrate(_ config: String) async throws {
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 0, "\(migrate.stderr)")
    }

    @Test("40 projections with max_connections 6, catching up and then live, /status polled: never more than 6 backends, every event applied exactly once")
    func budget() async throws {
        let setup = try await Self.setup("budget")
        let port = HTTPGet.freePort()
        let config = Self.config(setup, projections: 40, maxConnections: 6, listen: "127.0.0.1:\(port)", batchSize: 50)
        defer { TemporaryFile.remove(config) }
        try await Self.migrate(config)
        let connection = try await setup.db.connect()
        let sampler = Sampler(setup.role, on: try await setup.db.connect())
        try await Seeder.seedTicks(2_000, on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        // Live appends while the projections catch up, and /status asked all along.
        for round in 0..<10 {
            try await Seeder.seedTicks(50, aggregateID: "live\(round)", on: connection)
            _ = try? HTTPGet.get(port: port, "/status", timeout: .seconds(5))
            try await Task.sleep(for: .milliseconds(200))
        }
        let total: Int64 = 2_000 + 10 * 50
        try await eventually("every projection caught up", timeout: .seconds(150)) {
            _ = try? HTTPGet.get(port: port, "/status", timeout: .seconds(5))
            let counts = try await Self.counts(on: connection)
            return counts.rows == 40 && counts.low == total
        }
        let status = try HTTPGet.get(port: port, "/status", timeout: .seconds(5))
        #expect(status.status == 200, "\(status.body)")
        let metrics = try HTTPGet.get(port: port, "/metrics", timeout: .seconds(5)).body
        #expect(metrics.contains("projectionist_connections_max 6"), "\(metrics.prefix(400))")
        #expect(metrics.contains("projectionist_connections_open "))
        #expect(metrics.contains("projectionist_connection_wait_seconds_bucket"))
        try await Task.sleep(for: .milliseconds(500))
        let counts = try await Self.counts(on: connection)
        #expect(counts.low == total && counts.high == total, "a projection applied an event twice or missed one: \(counts)")
        daemon.signal(SIGTERM)
        let exit = await daemon.finish()
        let peak = await sampler.stop()
        print("budget: peak \(peak) backends of max_connections 6, \(sampler.samples) samples")
        #expect(exit.status == 0, "\(exit.stderr.suffix(2000))")
        #expect(peak <= 6, "the daemon held \(peak) connections with max_connections 6")
        #expect(peak >= 3, "the sampler saw too little to judge: \(peak)")
    }

    @Test("a role with CONNECTION LIMIT 4 under a budget of 10: the daemon catches up exactly, stays alive, and logs the refusals without a flood")
    func connectionLimitBelowBudget() async throws {
        let setup = try await Self.setup("limit", connectionLimit: 4)
        let config = Self.config(setup, projections: 12, maxConnections: 10, batchSize: 50)
        defer { TemporaryFile.remove(config) }
        try await Self.migrate(config)
        let connection = try await setup.db.connect()
        try await Seeder.seedTicks(1_500, on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await eventually("every projection caught up", timeout: .seconds(150)) {
            let counts = try await Self.counts(on: connection)
            return counts.rows == 12 && counts.low == 1_500
        }
        try await Seeder.seedTicks(100, aggregateID: "live", on: connection)
        try await eventually("the live events applied", timeout: .seconds(60)) { try await Self.counts(on: connection).low == 1_600 }
        #expect(daemon.process.isRunning)
        daemon.signal(SIGTERM)
        let exit = await daemon.finish()
        let counts = try await Self.counts(on: connection)
        #expect(counts.low == 1_600 && counts.high == 1_600, "\(counts)")
        #expect(exit.status == 0, "\(exit.stderr.suffix(2000))")
        let refusals = exit.stderr.split(separator: "\n").filter { $0.contains("refused a connection") }
        print("connection limit: \(refusals.count) refusal lines: \(refusals)")
        #expect(!refusals.isEmpty, "the limit was never reached: the test proves nothing")
        #expect(refusals.count <= 3, "a flood of refusal lines: \(refusals.count)")
        #expect(refusals.allSatisfy { $0.contains("refusals=") }, "\(refusals)")
        // No other error: the refusals were transient for everyone.
        let failures = exit.stderr.split(separator: "\n").filter { $0.contains("Projection failed") || $0.contains("too many connections") && !$0.contains("refused a connection") }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test("kill -9 mid catch-up with borrowed connections, then a restart: every event applied exactly once")
    func killMidCatchUp() async throws {
        let setup = try await Self.setup("budgetkill")
        let config = Self.config(setup, projections: 16, maxConnections: 5, batchSize: 20)
        defer { TemporaryFile.remove(config) }
        try await Self.migrate(config)
        let connection = try await setup.db.connect()
        try await Seeder.seedTicks(3_000, on: connection)
        let first = try ProjectionistProcess.start(["run", "--config", config])
        try await eventually("some progress", timeout: .seconds(60), every: .milliseconds(10)) {
            try await Self.counts(on: connection).high > 200
        }
        first.signal(SIGKILL)
        _ = await first.finish()
        let partial = try await Self.counts(on: connection)
        #expect(partial.low < 3_000, "everything was done before the kill: the test proves nothing")
        let second = try ProjectionistProcess.start(["run", "--config", config])
        defer { second.signal(SIGKILL) }
        try await eventually("caught up after the restart", timeout: .seconds(150)) {
            try await Self.counts(on: connection).low >= 3_000
        }
        try await Task.sleep(for: .milliseconds(500))
        let counts = try await Self.counts(on: connection)
        #expect(counts.low == 3_000 && counts.high == 3_000, "\(counts)")
        second.signal(SIGTERM)
        #expect(await second.finish().status == 0)
    }

    @Test("database.max_connections below 3 or not a whole number exits 78 naming the key", arguments: ["2", "2.5", "0", "ten"])
    func badValues(_ value: String) async throws {
        let config = TemporaryFile.write(
            "database:\n  url: host=/nonexistent\n  startup_timeout: 1s\n  max_connections: \(value)\nmetrics:\n  listen: \"\"\n")
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(
            ["run", "--config", config], environment: ["PROJECTIONIST_DATABASE_URL": nil, "DATABASE_URL": nil])
        #expect(output.status == 78, "\(output.stderr)")
        #expect(output.stderr.contains("database.max_connections"), "\(output.stderr)")
    }

    @Test("peak server connections of 1, 30 and 60 projections catching up under the default budget", arguments: [1, 30, 60])
    func peakWithManyProjections(_ count: Int) async throws {
        let events = count == 1 ? 30_000 : 1_000
        let setup = try await Self.setup("peak\(count)")
        let config = Self.config(setup, projections: count, maxConnections: nil, batchSize: count == 1 ? 1000 : 100)
        defer { TemporaryFile.remove(config) }
        try await Self.migrate(config)
        let connection = try await setup.db.connect()
        let sampler = Sampler(setup.role, on: try await setup.db.connect())
        try await Seeder.seedTicks(events, on: connection)
        let clock = ContinuousClock()
        let started = clock.now
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await eventually("caught up", timeout: .seconds(200)) {
            let counts = try await Self.counts(on: connection)
            return counts.rows == count && counts.low == events
        }
        let took = clock.now - started
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
        let peak = await sampler.stop()
        print("peak: \(count) projections: \(peak) backends (budget 10), caught up \(events) events each in \(took) (from the start of the process)")
        #expect(peak <= 10, "at the peak:\n\(sampler.atPeak.joined(separator: "\n"))")
        #expect(try await Self.counts(on: connection).high == events)
    }
}
