import BuildInfo
import EventStore
import Foundation
import Glibc
import Postgres
@testable import ProjectionistApp
import Synchronization
import Projections
import TestSupport
import TestTraits
import Testing

/// The daemon's HTTP listener, scraped while it works, against the database's own numbers.
@Suite(.database, .timeLimit(.minutes(3)), .serialized)
struct ObservabilityTests {
    /// Samples of `name` in a Prometheus text exposition, by their label text.
    static func samples(_ name: String, in text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            let parts = line.split(separator: " ")
            guard let value = parts.last.flatMap({ Double($0) }) else { continue }
            let labels = line.dropFirst(name.count).prefix { $0 != " " }
            values[String(labels)] = value
        }
        return values
    }

    static func value(_ name: String, _ labels: String = "{projection=\"order_overview_v1\"}", in text: String) -> Double? {
        Self.samples(name, in: text)[labels]
    }

    static func promtool(_ exposition: String) async throws -> (status: Int32, output: String) {
        let file = TemporaryFile.write(exposition)
        defer { TemporaryFile.remove(file) }
        return try await Shell.run(["sh", "-c", "promtool check metrics < \(file)"])
    }

    @Test("/metrics while catching up and when idle matches the database (checkpoint, head, lag, events applied); promtool accepts it; /healthz, /status")
    func scrape() async throws {
        let db = try await TestDatabase.fresh("observe")
        let port = HTTPGet.freePort()
        // Small batches: the catch-up lasts seconds, long enough for the gauges (refreshed every second) to show it.
        let config = daemonConfig(db, worker: "  batch_size: 10", extra: "metrics:\n  listen: 127.0.0.1:\(port)")
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(6_000, on: connection)
        let head = try await EventStore().latestPosition(on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }

        var sawCatchingUp = false
        try await eventually("a scrape while catching up", timeout: .seconds(60), every: .milliseconds(50)) {
            guard let response = try? HTTPGet.get(port: port, "/metrics"), response.status == 200 else { return false }
            // Before the runner has read the head there is no position sample at all; after, all three.
            // (They appear in the order lag, head, checkpoint.)
            guard let checkpoint = Self.value("projectionist_checkpoint_position", in: response.body) else {
                if Self.value("projectionist_lag_events", in: response.body) == nil {
                    #expect(Self.value("projectionist_head_position", in: response.body) == nil)
                }
                return false
            }
            let stored = try await CheckpointStore().position("order_overview_v1", on: connection) ?? 0
            // The gauge trails the database by at most a second's work, never leads it.
            #expect(checkpoint <= Double(stored))
            let headGauge = try #require(Self.value("projectionist_head_position", in: response.body), "\(response.body)")
            #expect(headGauge <= Double(head))
            let lag = try #require(Self.value("projectionist_lag_events", in: response.body), "\(response.body)")
            let catchingUp = try #require(
                Self.value("projectionist_state", "{projection=\"order_overview_v1\",state=\"catching_up\"}", in: response.body), "\(response.body)")
            if catchingUp == 1, checkpoint > 0 {
                #expect(lag > 0)
                sawCatchingUp = true
            }
            return sawCatchingUp
        }
        try await eventually("idle at the head", timeout: .seconds(90), every: .milliseconds(200)) {
            let body = try HTTPGet.get(port: port, "/metrics").body
            return Self.value("projectionist_state", "{projection=\"order_overview_v1\",state=\"idle\"}", in: body) == 1
                && Self.value("projectionist_checkpoint_position", in: body) == Double(head)
                && Self.value("projectionist_lag_seconds", in: body) == 0
        }
        let body = try HTTPGet.get(port: port, "/metrics").body
        let orderEvents = try await connection.query("SELECT count(*) FROM events WHERE aggregate_type = 'Order'")[0].decode(Int64.self, at: 0)
        #expect(Self.value("projectionist_events_applied_total", in: body) == Double(orderEvents))
        #expect(Self.value("projectionist_lag_events", in: body) == 0)
        #expect((Self.value("projectionist_batch_duration_seconds_count", in: body) ?? 0) > 0)
        #expect((Self.value("process_resident_memory_bytes", "", in: body) ?? 0) > 1_000_000)
        #expect((Self.value("process_virtual_memory_bytes", "", in: body) ?? 0) > 1_000_000)
        #expect((Self.value("process_cpu_seconds_total", "", in: body) ?? 0) > 0)
        let started = Self.value("process_start_time_seconds", "", in: body) ?? 0
        #expect(abs(started - Date().timeIntervalSince1970) < 600, "process_start_time_seconds \(started)")
        let openFDs = Self.value("process_open_fds", "", in: body) ?? 0
        #expect(openFDs >= 3 && openFDs <= (Self.value("process_max_fds", "", in: body) ?? 0), "process_open_fds \(openFDs)")
        #expect(body.contains("projectionist_build_info{version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.commit ?? "unknown")\"} 1"), "\(body)")
        #expect((Self.value("projectionist_open_connections", "", in: body) ?? 0) >= 2)
        let check = try await Self.promtool(body)
        #expect(check.status == 0, "promtool check metrics: \(check.output)")

        let health = try HTTPGet.get(port: port, "/healthz")
        #expect(health.status == 200)
        // Date (RFC 9110's IMF-fixdate, from the C library) and Server on every response; 404 elsewhere.
        let date = health.headers.first { $0.lowercased().hasPrefix("date: ") }.map { String($0.dropFirst(6)) } ?? ""
        #expect(date.range(of: #"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$"#, options: .regularExpression) != nil, "\(health.headers)")
        #expect(health.headers.contains { $0.lowercased() == "server: projectionist" }, "\(health.headers)")
        #expect(try HTTPGet.get(port: port, "/nothing-here").status == 404)
        #expect(try HTTPGet.get(port: port, "/readyz").status == 200)
        let status = try HTTPGet.get(port: port, "/status")
        #expect(status.status == 200)
        let json = try JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [String: Any]
        #expect(json?["head"] as? Int == Int(head))
        #expect(projectionState(json ?? [:])["lag_seconds"] as? Double == 0)
        #expect(try HTTPGet.get(port: port, "/nothing").status == 404)
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("/readyz turns 503 naming the projection when it parks, and 200 again once it resumes")
    func readiness() async throws {
        let db = try await TestDatabase.fresh("observe_ready")
        let port = HTTPGet.freePort()
        let poisoned = """
            metrics:
              listen: 127.0.0.1:\(port)
            """
        let config = daemonConfig(db, extra: poisoned)
        // A second projection whose OrderConfirmed handler divides by the divisor table's value.
        let withPoison = TemporaryFile.write(
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                of: "projections:\n", with: """
                    projections:
                      - name: poisoned
                        on_error: stop
                        setup: CREATE TABLE IF NOT EXISTS divisor (d int); INSERT INTO divisor SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM divisor); CREATE TABLE IF NOT EXISTS poison_log (n int)
                        reset: DELETE FROM poison_log
                        handlers:
                          OrderConfirmed: INSERT INTO poison_log SELECT 1 / d FROM divisor

                    """))
        defer { TemporaryFile.remove(config); TemporaryFile.remove(withPoison) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", withPoison]).status == 0)
        let connection = try await db.connect()
        _ = try await appendOrders(5, prefix: "r", on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", withPoison])
        defer { daemon.signal(SIGKILL) }
        try await eventually("not ready: poisoned failed", timeout: .seconds(30)) {
            guard let response = try? HTTPGet.get(port: port, "/readyz") else { return false }
            return response.status == 503 && response.body.contains("\"name\":\"poisoned\"") && response.body.contains("failed")
        }
        let body = try HTTPGet.get(port: port, "/readyz").body
        #expect(!body.contains("order_overview_v1"), "a healthy projection is not named: \(body)")
        try await connection.query("UPDATE divisor SET d = 1")
        #expect(try await ProjectionistProcess.run(["reset", "poisoned", "--config", withPoison]).status == 0)
        try await eventually("ready again", timeout: .seconds(30)) { (try? HTTPGet.get(port: port, "/readyz").status) == 200 }
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("an address already in use exits 78 naming metrics.listen, before READY and without starting anything")
    func addressInUse() async throws {
        let db = try await TestDatabase.fresh("observe_busy")
        let (holder, port) = HTTPGet.occupyPort()
        defer { close(holder) }
        let config = daemonConfig(db, extra: "metrics:\n  listen: 127.0.0.1:\(port)")
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let notify = try NotifySocket()
        let run = try await ProjectionistProcess.run(["run", "--config", config], environment: ["NOTIFY_SOCKET": notify.path])
        #expect(run.status == 78)
        #expect(run.stderr.contains("metrics.listen") && run.stderr.contains("in use"), "\(run.stderr)")
        #expect(!notify.lines.contains("READY=1"))
        notify.close()
    }

    @Test("/metrics scraped right after start: no lag sample before the head is known, and a lag of 0 means caught up")
    func noLagBeforeTheHead() async throws {
        let db = try await TestDatabase.fresh("observe_early")
        let port = HTTPGet.freePort()
        let config = daemonConfig(db, worker: "  batch_size: 50", extra: "metrics:\n  listen: 127.0.0.1:\(port)")
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(1_000, on: connection)
        let head = Double(try await EventStore().latestPosition(on: connection))
        #expect(head >= 3_000)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        var scrapes = 0
        var withoutLag = 0
        try await eventually("idle at the head", timeout: .seconds(120), every: .milliseconds(10)) {
            guard let response = try? HTTPGet.get(port: port, "/metrics"), response.status == 200 else { return false }
            scrapes += 1
            let body = response.body
            let lag = Self.value("projectionist_lag_events", in: body)
            let checkpoint = Self.value("projectionist_checkpoint_position", in: body)
            let headGauge = Self.value("projectionist_head_position", in: body)
            guard let lag, let checkpoint else {
                withoutLag += 1
                #expect(lag != nil || (checkpoint == nil && headGauge == nil), "a position sample without a lag: \(body)")
                return false
            }
            #expect(headGauge == head, "the head gauge before the head was read: \(headGauge ?? -1)")
            #expect(head - checkpoint == lag)
            if lag == 0 { #expect(checkpoint == head, "lag 0 at checkpoint \(checkpoint) of \(head)") }
            if let seconds = Self.value("projectionist_lag_seconds", in: body), seconds == 0 {
                #expect(checkpoint == head, "lag_seconds 0 at checkpoint \(checkpoint) of \(head)")
            }
            return checkpoint == head && Self.value("projectionist_lag_seconds", in: body) == 0
        }
        #expect(scrapes > 1)
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("150 concurrent /status requests while the checkpoint table is locked: the daemon's connections stay bounded and every request answers")
    func statusUnderLoad() async throws {
        let db = try await TestDatabase.fresh("observe_status_load")
        let port = HTTPGet.freePort()
        let config = daemonConfig(db, extra: "metrics:\n  listen: 127.0.0.1:\(port)")
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        _ = try await appendOrders(5, prefix: "s", on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await eventually("ready", timeout: .seconds(30)) { (try? HTTPGet.get(port: port, "/readyz").status) == 200 }
        #expect(try HTTPGet.get(port: port, "/status").status == 200)
        let count = """
            SELECT count(*) FROM pg_stat_activity
            WHERE datname = $1 AND application_name LIKE 'projectionist%' AND application_name <> 'projectionist-test'
            """
        func daemonConnections() async throws -> Int64 { try await connection.query(count, [db.name])[0].decode(Int64.self, at: 0) }
        try await Task.sleep(for: .seconds(1))
        let baseline = try await daemonConnections()

        let locker = try await db.connect()
        try await locker.query("BEGIN")
        try await locker.query("LOCK TABLE consumer_checkpoints IN ACCESS EXCLUSIVE MODE")
        let answers = Mutex<[Int]>([])
        for _ in 0..<150 {
            Thread {
                let status = (try? HTTPGet.get(port: port, "/status", timeout: .seconds(60)))?.status ?? -1
                answers.withLock { $0.append(status) }
            }.start()
        }
        var most = baseline
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < .seconds(4) {
            most = max(most, try await daemonConnections())
            try await Task.sleep(for: .milliseconds(100))
        }
        // The listener reads on one borrowed connection at most, however many ask.
        #expect(most <= baseline + 1, "the daemon had \(most) connections under load, \(baseline) before")
        try await eventually("every request answered while the lock is held", timeout: .seconds(30)) { answers.withLock { $0.count } == 150 }
        #expect(answers.withLock { $0 }.allSatisfy { $0 == 200 || $0 == 503 }, "\(answers.withLock { Dictionary(grouping: $0, by: { $0 }).mapValues(\.count) })")
        try await locker.query("ROLLBACK")
        try await eventually("200 again", timeout: .seconds(30)) { (try? HTTPGet.get(port: port, "/status", timeout: .seconds(10)).status) == 200 }
        // The runner held up by the lock (its lease renewal too, on a loaded machine) may report
        // catching up for a moment before it finds itself at the head again.
        try await eventually("idle again", timeout: .seconds(30)) {
            let json = try JSONSerialization.jsonObject(with: Data(try HTTPGet.get(port: port, "/status").body.utf8)) as? [String: Any] ?? [:]
            return projectionState(json)["state"] as? String == "idle"
        }
        #expect(try await daemonConnections() <= baseline + 1)
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("two daemons started at the same moment on one port: the loser exits 78 naming metrics.listen before READY; PROJECTIONIST_METRICS_LISTEN lets both run")
    func twoOnOnePort() async throws {
        let db = try await TestDatabase.fresh("observe_two")
        let port = HTTPGet.freePort()
        let config = daemonConfig(db, extra: "metrics:\n  listen: 127.0.0.1:\(port)")
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let notifyA = try NotifySocket()
        let notifyB = try NotifySocket()
        let a = try ProjectionistProcess.start(["run", "--config", config], environment: ["NOTIFY_SOCKET": notifyA.path])
        let b = try ProjectionistProcess.start(["run", "--config", config], environment: ["NOTIFY_SOCKET": notifyB.path])
        defer { a.signal(SIGKILL); b.signal(SIGKILL) }
        try await eventually("one of them ends", timeout: .seconds(30)) { !a.process.isRunning || !b.process.isRunning }
        let (loser, loserNotify, winner, winnerNotify) = a.process.isRunning ? (b, notifyB, a, notifyA) : (a, notifyA, b, notifyB)
        let lost = await loser.finish()
        #expect(lost.status == 78, "\(lost.stderr)")
        #expect(lost.stderr.contains("metrics.listen") && lost.stderr.contains("in use"), "\(lost.stderr)")
        #expect(!loserNotify.lines.contains("READY=1"))
        try await eventually("the winner is ready", timeout: .seconds(30)) { winnerNotify.lines.contains("READY=1") }
        #expect(winner.process.isRunning)

        let other = HTTPGet.freePort()
        let second = try ProjectionistProcess.start(
            ["run", "--config", config], environment: ["NOTIFY_SOCKET": loserNotify.path, "PROJECTIONIST_METRICS_LISTEN": "127.0.0.1:\(other)"])
        defer { second.signal(SIGKILL) }
        try await eventually("the second instance is ready on its own port", timeout: .seconds(30)) {
            loserNotify.lines.contains("READY=1") && (try? HTTPGet.get(port: other, "/healthz").status) == 200
        }
        #expect(try HTTPGet.get(port: port, "/healthz").status == 200)
        for process in [winner, second] {
            process.signal(SIGTERM)
            #expect(await process.finish().status == 0)
        }
        notifyA.close()
        notifyB.close()
    }

    @Test("lag_seconds in status --json: the age of the oldest event not applied yet")
    func lagSecondsInStatus() async throws {
        let db = try await TestDatabase.fresh("observe_lag")
        let config = daemonConfig(db)
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        _ = try await appendOrders(2, prefix: "l", on: connection)
        // Events written 90 s ago, without waiting 90 s.
        try await connection.query("UPDATE events SET created_at = created_at - interval '90 seconds'")
        let lag = projectionState(try await statusJSON(config))["lag_seconds"] as? Double ?? 0
        #expect(lag >= 89 && lag < 120, "lag_seconds \(lag)")
        let table = try await ProjectionistProcess.run(["status", "--config", config])
        #expect(table.stdout.contains("LAG S"))
    }

    @Test("the operations files: promtool accepts the alert rules; alerts and dashboard use only exported metrics")
    func operationsFiles() async throws {
        let rules = repositoryRoot.appendingPathComponent("deploy/prometheus/alerts.yml").path
        let check = try await Shell.run(["promtool", "check", "rules", rules])
        #expect(check.status == 0, "\(check.output)")
        let exported = Set(MetricsCatalog.entries.map(\.name))
        for file in ["deploy/prometheus/alerts.yml", "deploy/grafana/projectionist.json"] {
            let text = try String(contentsOfFile: repositoryRoot.appendingPathComponent(file).path, encoding: .utf8)
            let used = Set(text.matches(of: try Regex("projectionist_[a-z_]+")).map { String(text[$0.range]) })
                .map { name in ["_bucket", "_count", "_sum"].reduce(name) { $0.hasSuffix($1) ? String($0.dropLast($1.count)) : $0 } }
            #expect(!used.isEmpty, "\(file) uses no metric")
            #expect(Set(used).subtracting(exported).isEmpty, "\(file) uses metrics nobody exports: \(Set(used).subtracting(exported).sorted())")
        }
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: repositoryRoot.appendingPathComponent("deploy/grafana/projectionist.json")))
        #expect(((dashboard as? [String: Any])?["panels"] as? [Any])?.isEmpty == false)
    }
}

@Suite struct MetricsCatalogTests {
    @Test("docs/reference.md lists every exported metric with its type, and nothing else")
    func documented() throws {
        let rows = try ReferenceDocument().rows(under: "### Metrics")
        let documented = rows.compactMap { row in ReferenceDocument.code(row[0]).map { "\($0) \(row[1])" } }
        #expect(documented == MetricsCatalog.entries.map { "\($0.name) \($0.type)" })
    }
}

@Suite struct ReadinessTests {
    func status(_ name: String, _ state: ProjectionState, lag: Int64 = 0, seconds: Double? = nil) -> ProjectionStatus {
        var status = ProjectionStatus(name: name)
        status.state = state
        status.head = 100 + lag
        status.position = 100
        status.lagSeconds = seconds
        status.lastError = state == .failed ? "handler failed at position 7" : nil
        return status
    }

    @Test("ready once started, unless a unit this instance runs failed or lags beyond the limits (0: none); standby and retired units do not count")
    func judge() {
        var health = ProjectionistConfiguration.Health()
        #expect(!Readiness.judge(started: false, statuses: [], health: health).ready)
        #expect(Readiness.judge(started: true, statuses: [self.status("a", .idle, lag: 5000, seconds: 600)], health: health).ready)
        let failed = Readiness.judge(started: true, statuses: [self.status("a#1/2", .failed), self.status("b", .standby)], health: health)
        #expect(!failed.ready)
        #expect(failed.problems == [Readiness.Problem(name: "a", partition: "1/2", reason: "failed: handler failed at position 7")])
        health.maxLagEvents = 1000
        health.maxLagSeconds = 60
        let lagging = Readiness.judge(
            started: true,
            statuses: [self.status("a", .catchingUp, lag: 1001), self.status("b", .idle, seconds: 61), self.status("c", .retired, lag: 9999)],
            health: health)
        #expect(lagging.problems.map(\.name) == ["a", "b"])
        #expect(lagging.problems[0].reason.contains("health.max_lag_events 1000"))
        #expect(lagging.problems[1].reason.contains("health.max_lag_seconds 60"))
        #expect(lagging.json.contains("\"ready\":false"))
    }

    @Test("metrics.listen: host:port, [v6]:port, empty turns it off; anything else is an error naming the key")
    func listen() throws {
        // The documented default (ReferenceTests pins it to docs/reference.md); nothing binds it here.
        #expect(try ProjectionistConfiguration.parse("", file: "p.yaml").metrics.listen == ListenAddress.default)
        #expect(try ProjectionistConfiguration.parse("metrics:\n  listen: \"[::1]:9000\"\n", file: "p.yaml").metrics.listen == ListenAddress(host: "::1", port: 9000))
        #expect(try ProjectionistConfiguration.parse("metrics:\n  listen: \"\"\n", file: "p.yaml").metrics.listen == nil)
        let config = try ProjectionistConfiguration.parse("health:\n  max_lag_events: 500\n  max_lag_seconds: 2.5\n", file: "p.yaml")
        #expect(config.health.maxLagEvents == 500 && config.health.maxLagSeconds == 2.5)
        for bad in ["metrics:\n  listen: 28125\n", "metrics:\n  listen: host:99999\n", "health:\n  max_lag_events: -1\n"] {
            let error = try #require(throws: ConfigurationError.self) { try ProjectionistConfiguration.parse(bad, file: "p.yaml") }
            #expect(error.keyPath == (bad.hasPrefix("metrics") ? "metrics.listen" : "health.max_lag_events"))
        }
    }

    @Test("the Date header's format: RFC 9110's IMF-fixdate in GMT")
    func httpDate() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_160_605) == "Tue, 01 Dec 2026 21:30:05 GMT")
    }
}
