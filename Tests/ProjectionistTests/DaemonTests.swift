import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

/// A configuration file for `db` with the example projection (plus extra YAML lines under worker,
/// and extra top-level keys). The HTTP listener is off unless `extra` configures it: daemons of
/// parallel tests would all want the default port.
func daemonConfig(_ db: TestDatabase, worker: String = "", extra: String = "") -> String {
    TemporaryFile.write(
        TestDaemonConfig(db, worker: worker, listen: extra.contains("metrics:") ? nil : "\"\"").yaml + "\n" + """
        projections:
          - name: order_overview_v1
            aggregate_types: [Order]
            setup: |
              \(OrderWorkload.readModelSQL.replacingOccurrences(of: "\n", with: "\n      "));
            reset: TRUNCATE order_overview_v1
            handlers:
              OrderPlaced: |
                INSERT INTO order_overview_v1 (order_id, customer_id, status, currency, total_cents, line_count, version)
                VALUES ($aggregate_id, $payload->>'customer_id', 'pending', $payload->>'currency', 0, 0, $aggregate_version)
                ON CONFLICT (order_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
                    currency = EXCLUDED.currency, version = EXCLUDED.version
                WHERE order_overview_v1.version < EXCLUDED.version
              OrderLineAdded: |
                UPDATE order_overview_v1
                SET total_cents = total_cents + ($payload->>'quantity')::bigint * ($payload->>'unit_price_cents')::bigint,
                    line_count = line_count + ($payload->>'quantity')::int, version = $aggregate_version
                WHERE order_id = $aggregate_id AND version < $aggregate_version
              OrderConfirmed:
                - UPDATE order_overview_v1 SET status = 'confirmed', version = $aggregate_version WHERE order_id = $aggregate_id AND version < $aggregate_version
        \(extra)
        """)
}

func statusJSON(_ config: String) async throws -> [String: Any] {
    let output = try await ProjectionistProcess.run(["status", "--json", "--config", config])
    #expect(output.status == 0, "status failed: \(output.stderr)")
    return try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] ?? [:]
}

func projectionState(_ json: [String: Any], _ name: String = "order_overview_v1") -> [String: Any] {
    (json["projections"] as? [[String: Any]])?.first { $0["name"] as? String == name } ?? [:]
}

@Suite(.database, .timeLimit(.minutes(3)))
struct DaemonTests {
    @Test("run: READY, STATUS, WATCHDOG at half of WATCHDOG_USEC, STOPPING; SIGTERM exits 0; status --json through it all")
    func lifecycle() async throws {
        let db = try await TestDatabase.fresh("daemon")
        let config = daemonConfig(db)
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let before = try await statusJSON(config)
        #expect(projectionState(before)["state"] as? String == "unknown")
        #expect(before["head"] as? Int == 0)

        let connection = try await db.connect()
        let last = try await appendOrders(20, prefix: "o", on: connection)
        let notify = try NotifySocket()
        let daemon = try ProjectionistProcess.start(
            ["run", "--config", config], environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": nil])
        try await eventually("READY=1") { notify.lines.contains("READY=1") }
        try await eventually("caught up") {
            let json = try await statusJSON(config)
            let state = projectionState(json)
            return state["position"] as? Int == Int(last) && state["lag"] as? Int == 0 && state["state"] as? String == "idle"
        }
        let json = try await statusJSON(config)
        #expect(json["head"] as? Int == Int(last))
        #expect(
            Set(projectionState(json).keys)
                == [
                    "name", "partition", "position", "lag", "lag_seconds", "state", "error", "slow_batch_seconds", "owner", "owner_host",
                    "lease_expires_seconds", "fencing_token", "successor", "events_per_second", "eta_seconds",
                    "configured_live", "parked_aggregates",
                ])
        // This daemon holds the unit's lease: its instance, host and pid, a running lease, a token.
        #expect(projectionState(json)["partition"] is NSNull)
        #expect((projectionState(json)["owner"] as? String).flatMap(UUID.init(uuidString:)) != nil)
        #expect((projectionState(json)["owner_host"] as? String)?.hasSuffix(":\(daemon.pid)") == true)
        #expect((projectionState(json)["lease_expires_seconds"] as? Double).map { $0 > 0 } == true)
        #expect((projectionState(json)["fencing_token"] as? Int).map { $0 >= 1 } == true)
        #expect(projectionState(json)["configured_live"] as? Bool == true, "the running daemon configures it")
        #expect(try await OrderWorkload.oracleDifferences(on: connection) == 0)
        // WATCHDOG=1 about every second (half of 2 s) while healthy: three more come, and not in a burst.
        let pingsBefore = notify.lines.filter { $0 == "WATCHDOG=1" }.count
        let clock = ContinuousClock()
        let watching = clock.now
        try await eventually("three more watchdog pings", timeout: .seconds(8)) { notify.lines.filter { $0 == "WATCHDOG=1" }.count - pingsBefore >= 3 }
        #expect(clock.now - watching > .milliseconds(1500), "three pings in \(clock.now - watching): not one a second")
        let statuses = notify.lines.filter { $0.hasPrefix("STATUS=") }
        #expect(statuses.contains { $0.contains("owns 1 of 1 units, max lag 0 (0 s)") }, "\(statuses)")
        #expect(notify.lines.firstIndex(of: "READY=1")! < notify.lines.lastIndex { $0.hasPrefix("STATUS=") }!)

        daemon.signal(SIGTERM)
        let start = clock.now
        let exit = await daemon.finish()
        #expect(exit.status == 0, "stderr: \(exit.stderr)")
        #expect(clock.now - start < .seconds(10), "SIGTERM took \(clock.now - start)")
        try await eventually("STOPPING=1 read from the socket", timeout: .seconds(5)) { notify.lines.contains("STOPPING=1") }
        #expect(projectionState(try await statusJSON(config))["state"] as? String == "stopped")
        notify.close()
    }

    @Test("reset while running: rebuilt without a restart; an unknown name is a usage error listing the names")
    func resetWhileRunning() async throws {
        let db = try await TestDatabase.fresh("daemonreset")
        let config = daemonConfig(db)
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        let last = try await appendOrders(10, prefix: "r", on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        try await eventually("caught up") { projectionState(try await statusJSON(config))["position"] as? Int == Int(last) }
        try await connection.query("UPDATE order_overview_v1 SET total_cents = 0, status = 'damaged'")
        #expect(try await OrderWorkload.oracleDifferences(on: connection) > 0)
        let reset = try await ProjectionistProcess.run(["reset", "order_overview_v1", "--config", config])
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stdout.contains("\(last) → 0"))
        try await eventually("rebuilt by the running daemon") {
            let differences = try await OrderWorkload.oracleDifferences(on: connection)
            let position = projectionState(try await statusJSON(config))["position"] as? Int
            return differences == 0 && position == Int(last)
        }
        // A rewind to N re-applies from N (version-guarded, so the model stays exact).
        let rewind = try await ProjectionistProcess.run(["reset", "order_overview_v1", "--to", "\(last - 5)", "--config", config])
        #expect(rewind.status == 0)
        try await eventually("caught up after the rewind") {
            projectionState(try await statusJSON(config))["position"] as? Int == Int(last)
        }
        #expect(try await OrderWorkload.oracleDifferences(on: connection) == 0)

        let unknown = try await ProjectionistProcess.run(["reset", "nope", "--config", config])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("order_overview_v1"))
        let negative = try await ProjectionistProcess.run(["reset", "order_overview_v1", "--to", "-3", "--config", config])
        #expect(negative.status == 64)
        #expect(negative.stderr.contains("--to must be 0 or more"), "\(negative.stderr)")
        // Past the head: refused (events appended up to there would never be applied), nothing changed.
        let past = try await ProjectionistProcess.run(["reset", "order_overview_v1", "--to", "\(last + 1000)", "--config", config])
        #expect(past.status == 64)
        #expect(past.stderr.contains("head is \(last)"), "\(past.stderr)")
        #expect(
            try await connection.query("SELECT last_position FROM consumer_checkpoints WHERE consumer_name = 'order_overview_v1'")[0]
                .decode(Int64.self, at: 0) == last)
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)
    }

    @Test("configuration errors exit 78 naming the file, key path and line", arguments: [
        ("worker:\n  colour: red\n", "worker.colour", "unknown key"),
        ("worker:\n  batch_size: many\n", "worker.batch_size", "positive whole number"),
        ("worker:\n  poll_interval: soon\n", "worker.poll_interval", "not a duration"),
        ("projections:\n  - name: a\n    handlers:\n      X: SELECT 1\n  - name: a\n    handlers:\n      X: SELECT 1\n", "projections[1].name", "duplicate projection name"),
        ("projections:\n  - name: a\n    handlers:\n      X: \"\"\n", "projections[0].handlers.X", "empty handler"),
        ("projections:\n  - name: a\n    handlers:\n      X: SELECT $aggregate_idd\n", "projections[0].handlers.X", "unknown parameter $aggregate_idd"),
        ("projections: [\n", "", "invalid YAML"),
        ("database:\n  url: host=/nonexistent\n  startup_timeout: 1s\nworker:\n  poll_interval: 0ms\n", "worker.poll_interval", "at least 1ms"),
        ("database:\n  url: host=/nonexistent\n  startup_timeout: 1s\nworker:\n  poll_interval: 9999999999999999h\n", "worker.poll_interval", "at most 1h"),
        ("database:\n  url: host=/nonexistent\n  startup_timeout: 1s\nworker:\n  batch_size: 4611686018427387904\n", "worker.batch_size", "at most 100000"),
        ("projections:\n  - name: \"a\\0b\"\n    handlers:\n      X: SELECT 1\n", "projections[0].name", "NUL"),
        ("projections:\n  - name: \"x#0/2\"\n    handlers:\n      X: SELECT 1\n", "projections[0].name", "must not contain '#' or '/'"),
    ])
    func configurationErrors(yaml: String, keyPath: String, message: String) async throws {
        let config = TemporaryFile.write(yaml + "metrics:\n  listen: \"\"\n")
        defer { TemporaryFile.remove(config) }
        let notify = try NotifySocket()
        let output = try await ProjectionistProcess.run(
            ["run", "--config", config], environment: ["NOTIFY_SOCKET": notify.path, "PROJECTIONIST_DATABASE_URL": nil, "DATABASE_URL": nil])
        #expect(output.status == 78)
        #expect(output.stderr.contains(config))
        #expect(keyPath.isEmpty || output.stderr.contains(keyPath))
        #expect(output.stderr.contains(message), "\(output.stderr)")
        #expect(output.stderr.range(of: #":\d+: "#, options: .regularExpression) != nil, "no line in: \(output.stderr)")
        #expect(!notify.lines.contains("READY=1"))
        notify.close()
    }

    @Test("an unreadable configuration file exits 78")
    func unreadableFile() async throws {
        let output = try await ProjectionistProcess.run(["run", "--config", "/nonexistent/projectionist.yaml"])
        #expect(output.status == 78)
        #expect(output.stderr.contains("/nonexistent/projectionist.yaml"))
    }

    @Test("an unreachable database exits 69 after startup_timeout, without READY and without the password")
    func unreachable() async throws {
        let config = TemporaryFile.write("database:\n  url: postgres://u:pa55-w0rd@127.0.0.1:1/x\n  startup_timeout: 1s\nmetrics:\n  listen: \"\"\n")
        defer { TemporaryFile.remove(config) }
        let notify = try NotifySocket()
        let output = try await ProjectionistProcess.run(
            ["run", "--config", config], environment: ["NOTIFY_SOCKET": notify.path, "PROJECTIONIST_DATABASE_URL": nil, "DATABASE_URL": nil])
        #expect(output.status == 69)
        #expect(!notify.lines.contains("READY=1"))
        #expect(!output.stderr.contains("pa55-w0rd"))
        notify.close()
    }

    @Test("missing tables exit 78 saying to run migrate; the environment's URL wins over the file")
    func missingTables() async throws {
        let db = try await TestDatabase.fresh("daemonnotables")
        let config = TemporaryFile.write(
            "database:\n  url: host=/nonexistent\nmetrics:\n  listen: \"\"\nprojections:\n  - name: a\n    handlers:\n      X: SELECT 1\n")
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(["run", "--config", config], environment: ["PROJECTIONIST_DATABASE_URL": db.connectionString])
        #expect(output.status == 78)
        #expect(output.stderr.contains("migrate"))
        #expect(output.stderr.contains("events"))
    }

    @Test("a column the daemon writes missing (retired_at): exit 78 naming the table and the column, before READY")
    func missingColumn() async throws {
        let db = try await TestDatabase.fresh("daemonnocolumn")
        let config = daemonConfig(db)
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        try await connection.query("ALTER TABLE consumer_checkpoints DROP COLUMN retired_at")
        let notify = try NotifySocket()
        let output = try await ProjectionistProcess.run(["run", "--config", config], environment: ["NOTIFY_SOCKET": notify.path])
        #expect(output.status == 78, "\(output.stderr)")
        #expect(output.stderr.contains("consumer_checkpoints") && output.stderr.contains("retired_at"), "\(output.stderr)")
        #expect(output.stderr.contains("projectionist migrate"), "\(output.stderr)")
        #expect(!notify.lines.contains("READY=1"))
        notify.close()
    }

    @Test(
        "an unknown database, an unknown role or a connection string libpq cannot parse: exit 78 at once naming database.url, never the password",
        arguments: ["dbname=no_such_database_x password=s3cr3t-pw", "user=no_such_role_x password=s3cr3t-pw", "password=s3cr3t-pw dbname"])
    func permanentConnectionErrors(suffix: String) async throws {
        let server = try TestDatabase.serverConnectionString()
        let config = TemporaryFile.write("database:\n  startup_timeout: 10s\nmetrics:\n  listen: \"\"\n")
        defer { TemporaryFile.remove(config) }
        let clock = ContinuousClock()
        let start = clock.now
        let notify = try NotifySocket()
        let output = try await ProjectionistProcess.run(
            ["run", "--config", config],
            environment: ["NOTIFY_SOCKET": notify.path, "PROJECTIONIST_DATABASE_URL": "\(server) \(suffix)", "DATABASE_URL": nil])
        #expect(output.status == 78, "\(output.stderr)")
        #expect(clock.now - start < .seconds(8), "took \(clock.now - start): retried like an unreachable server")
        #expect(output.stderr.contains("database.url"), "\(output.stderr)")
        #expect(!output.stderr.contains("s3cr3t-pw"), "\(output.stderr)")
        #expect(!notify.lines.contains("READY=1"))
        notify.close()
        // The operator commands too.
        let status = try await ProjectionistProcess.run(
            ["status", "--config", config], environment: ["PROJECTIONIST_DATABASE_URL": "\(server) \(suffix)", "DATABASE_URL": nil])
        #expect(status.status == 78, "\(status.stderr)")
        #expect(!status.stderr.contains("s3cr3t-pw"))
    }

    @Test("status against a server that is down says within a few seconds that it waits, for what and for how long")
    func statusSaysItWaits() async throws {
        // A port that takes the connection and never answers: each of libpq's attempts waits out its connect_timeout.
        let (silent, port) = HTTPGet.occupyPort()
        defer { close(silent) }
        let config = TemporaryFile.write(
            "database:\n  url: postgres://u:pa55-w0rd@127.0.0.1:\(port)/x\n  startup_timeout: 20s\nmetrics:\n  listen: \"\"\n")
        defer { TemporaryFile.remove(config) }
        let status = try ProjectionistProcess.start(
            ["status", "--config", config], environment: ["PROJECTIONIST_DATABASE_URL": nil, "DATABASE_URL": nil])
        defer { status.signal(SIGKILL) }
        #expect(await status.waitForOutput("aiting", timeout: .seconds(15)), "nothing said while waiting: \(status.stderr)")
        #expect(status.process.isRunning, "it should still be waiting")
        let said = status.stderr
        #expect(said.contains("20s") && said.contains("database.startup_timeout"), "\(said)")
        #expect(said.contains("127.0.0.1"), "\(said)")
        #expect(!said.contains("pa55-w0rd"))
        #expect(await status.finish().status == 69)
    }
}
