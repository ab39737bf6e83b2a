import EventStore
import Foundation
import Logging
import Postgres
import ProjectionistApp
import Projections
import TestSupport

/// One benchmark run: every measurement of issue 6 on one throwaway database.
struct Bench {
    let database: ConnectionConfiguration
    let connectionString: String
    let orders: Int
    let liveSeconds: Int
    let daemonBinary: String?
    let repository: URL
    let clock = ContinuousClock()
    var results = BenchResults()

    /// How long any wait of the benchmark may take before it gives up.
    static let patience = Duration.seconds(600)

    var logger: Logger {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        return logger
    }

    // MARK: - Setup

    /// Drops everything and migrates afresh (with or without the notify trigger).
    func freshSchema(_ admin: PostgresConnection, notifyTrigger: Bool = true) async throws {
        try await admin.execute(script: """
            DROP VIEW IF EXISTS order_overview;
            DROP TABLE IF EXISTS events, aggregate_heads, consumer_checkpoints, consumer_gap_skips, consumer_dead_letters,
                worker_nodes, consumer_assignments, order_overview_v1, order_overview_v2, order_overview_plain, refund_overview,
                latency_probe CASCADE;
            DROP FUNCTION IF EXISTS events_notify() CASCADE;
            """)
        var schema = Schema()
        schema.notifyTrigger = notifyTrigger
        try await admin.execute(script: Migration.sql(for: schema))
        try await admin.execute(script: OrderWorkload.readModelSQL)
        try await admin.execute(script: OrderWorkload.readModelSQL.replacingOccurrences(of: "order_overview_v1", with: "refund_overview"))
        try await admin.execute(script: "CREATE TABLE latency_probe (position bigint NOT NULL)")
    }

    /// The repository's example configuration (the SQL order_overview_v1).
    func exampleConfiguration() throws -> ProjectionistConfiguration {
        try ProjectionistConfiguration.load(path: self.repository.appendingPathComponent("systemd/projectionist.yaml").path, environment: [:])
    }

    func options(_ change: (inout RuntimeOptions) -> Void = { _ in }) -> RuntimeOptions {
        var options = RuntimeOptions()
        options.pollInterval = .milliseconds(100)
        options.maxPollInterval = .seconds(1)
        if let size = ProcessInfo.processInfo.environment["BENCH_BATCH_SIZE"].flatMap(Int.init) { options.batchSize = size }
        change(&options)
        return options
    }

    /// Runs `projections` from checkpoint 0 until every one reaches the head. - Returns: seconds.
    func catchUp(_ projections: [any Projection], options: RuntimeOptions, admin: PostgresConnection) async throws -> Double {
        try await self.measuredCatchUp(projections, options: options, admin: admin).seconds
    }

    /// `catchUp` with the CPU it took: this process's, the whole machine's and PostgreSQL's.
    func measuredCatchUp(_ projections: [any Projection], options: RuntimeOptions, admin: PostgresConnection) async throws -> CatchUpRun {
        // Every checkpoint of each projection, under any partition layout (`name`, `name#k/N`).
        var units = projections.map(\.name)
        for projection in projections {
            units += try await PartitionLayout.rows(of: projection.name, schema: options.schema, on: admin).map(\.unit)
        }
        try await CheckpointStore().remove(units, on: admin)
        let head = try await EventStore().latestPosition(on: admin)
        let postmaster = postmasterPID(backend: await admin.backendPID)
        let start = self.clock.now
        let cpuStart = processCPUSeconds()
        let machineStart = machineBusyCPUSeconds()
        let serverStart = postmaster.flatMap(serverCPUSeconds(postmaster:))
        let running = try RunningWorker(database: self.database, projections: projections, options: options, logger: self.logger)
        try await eventually("every projection reaches the head", timeout: Self.patience, every: .milliseconds(2)) {
            running.worker.board.all.allSatisfy { $0.position >= head }
        }
        let elapsed = self.clock.now - start
        var run = CatchUpRun(
            seconds: elapsed.seconds, clientCPU: processCPUSeconds() - cpuStart, machineCPU: machineBusyCPUSeconds() - machineStart)
        if let serverStart, let serverEnd = postmaster.flatMap(serverCPUSeconds(postmaster:)) { run.postgresCPU = serverEnd - serverStart }
        if ProcessInfo.processInfo.environment["BENCH_CPU"] != nil {
            print(String(
                format: "  CPU over %.2f s: client %.2f s, whole machine %.2f s busy (client and PostgreSQL)",
                run.seconds, run.clientCPU, run.machineCPU))
        }
        try await running.finish()
        return run
    }

    /// A fresh schema and the order log (`orders` orders, every 20th aggregate a `Refund`).
    mutating func seedLog(_ admin: PostgresConnection) async throws {
        try await self.freshSchema(admin)
        let start = self.clock.now
        let total = try await Seeder.seedOrders(self.orders, otherType: "Refund", otherEvery: 20, on: admin)
        try await admin.execute(script: "VACUUM ANALYZE events")
        self.results.events = total
        let refunds = try await admin.query("SELECT count(*) FROM events WHERE aggregate_type = 'Refund'")[0].decode(Int64.self, at: 0)
        print("seeded \(total) events (\(refunds) of them Refund) in \(format(self.clock.now - start))")
    }

    // MARK: - Measurements

    /// Events/s of `projection`'s statements sent straight through the Postgres module:
    /// prepared, pipelined, 1,000 per transaction, no runtime.
    func ceiling(of projection: some StatementProjection, _ events: [PersistedEvent], admin: PostgresConnection) async throws -> Double {
        try await admin.execute(script: "TRUNCATE order_overview_v1")
        try await projection.prepare(admin)
        let statements = try events.map { try projection.statements(for: $0) }
        let start = self.clock.now
        for chunk in stride(from: 0, to: statements.count, by: 1000) {
            try await admin.transaction { tx in
                var pipeline = Pipeline()
                for list in statements[chunk..<min(chunk + 1000, statements.count)] {
                    for statement in list { pipeline.append(statement) }
                }
                try await tx.execute(pipeline, discardingResults: true)
            }
        }
        return Double(events.count) / (self.clock.now - start).seconds
    }

    /// Ceiling and catch-up (SQL projection, Swift projection), plus the scoped catch-up.
    mutating func throughput(_ admin: PostgresConnection) async throws {
        try await self.seedLog(admin)
        let total = self.results.events

        // Ceiling: the same statements straight through the Postgres module, pipelined, 1,000 per transaction.
        let overview = OrderOverviewProjection()
        let orderEvents = try await EventStore().readEvents(after: 0, limit: Int(total), on: admin).filter { $0.aggregateType == "Order" }
        // Each projection's own statements, prepared once, parameters encoded beforehand: only the
        // server's work (and the round trips of 1,000-statement pipelines) is timed.
        let sql = try self.exampleConfiguration().sqlProjections()[0]
        // Ceilings and catch-ups alternate for BENCH_ROUNDS rounds (default 3) and each figure is
        // the median of its rounds: the server's speed drifts on a shared machine, and a ratio of
        // two single measurements taken a minute apart drifts with it.
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3)
        var ceilings: [Double] = [], ceilingsSQL: [Double] = [], catchUpsSQL: [Double] = [], catchUpsSwift: [Double] = []
        var catchUpsSwiftOneAtATime: [Double] = []
        for round in 1...rounds {
            ceilings.append(try await self.ceiling(of: overview, orderEvents, admin: admin))
            ceilingsSQL.append(try await self.ceiling(of: sql, orderEvents, admin: admin))
            // Catch-up as the SQL projection from the YAML example, then as the Swift projection.
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            catchUpsSQL.append(Double(orderEvents.count) / (try await self.catchUp([sql], options: self.options(), admin: admin)))
            self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            catchUpsSwift.append(Double(orderEvents.count) / (try await self.catchUp([overview], options: self.options(), admin: admin)))
            self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
            // The same without pipelines in flight (each batch's results read before the next is sent).
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            let oneAtATime = self.options { $0.pipelinesInFlight = false }
            catchUpsSwiftOneAtATime.append(Double(orderEvents.count) / (try await self.catchUp([overview], options: oneAtATime, admin: admin)))
            self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
            print(String(
                format: "round %d: ceilings %.0f (Swift) / %.0f (SQL) events/s; catch-up SQL %.0f (%.0f %%), Swift %.0f (%.0f %%)",
                round, ceilings[round - 1], ceilingsSQL[round - 1], catchUpsSQL[round - 1], 100 * catchUpsSQL[round - 1] / ceilingsSQL[round - 1],
                catchUpsSwift[round - 1], 100 * catchUpsSwift[round - 1] / ceilings[round - 1]))
            print(String(
                format: "  Swift without pipelines in flight: %.0f (%.0f %%)",
                catchUpsSwiftOneAtATime[round - 1], 100 * catchUpsSwiftOneAtATime[round - 1] / ceilings[round - 1]))
        }
        self.results.ceiling = median(ceilings)
        self.results.ceilingSQL = median(ceilingsSQL)
        self.results.catchUpSQL = median(catchUpsSQL)
        self.results.catchUpSwift = median(catchUpsSwift)
        self.results.catchUpSwiftOneAtATime = median(catchUpsSwiftOneAtATime)
        print("ceiling (median of \(rounds)): \(Int(self.results.ceiling)) events/s with the Swift projection's statements, \(Int(self.results.ceilingSQL)) with the SQL projection's")
        print("catch-up (median of \(rounds)): SQL projection \(Int(self.results.catchUpSQL)) events/s, Swift projection \(Int(self.results.catchUpSwift)) events/s")

        // Scoped: the same SQL over the Refund type (5 % of the log); events/s counts the log it covers.
        let refundsProjection = try SQLProjection(
            name: "refund_overview", aggregateTypes: ["Refund"], onError: .stop, setup: nil, reset: nil,
            handlers: try self.exampleConfiguration().projections[0].handlers.map { handler in
                (handler.eventType, handler.statements.map { $0.replacingOccurrences(of: "order_overview_v1", with: "refund_overview") })
            })
        let scopedSeconds = try await self.catchUp([refundsProjection], options: self.options(), admin: admin)
        self.results.scopedCatchUp = Double(total) / scopedSeconds
        let refundRows = try await admin.query("SELECT count(*) FROM refund_overview")[0].decode(Int64.self, at: 0)
        print("scoped catch-up (Refund, \(refundRows) aggregates): \(Int(self.results.scopedCatchUp)) log events/s")
    }

    /// Latency from an append's commit to the read model's commit, from commit timestamps
    /// (track_commit_timestamp): 4 writers at a steady total rate for `liveSeconds`.
    mutating func liveLatency(_ admin: PostgresConnection, notify: Bool) async throws -> Percentiles {
        try await self.freshSchema(admin, notifyTrigger: notify)
        let probe = try SQLProjection(
            name: "latency_probe", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [("Tick", ["INSERT INTO latency_probe (position) VALUES ($global_position)"])])
        let options = self.options { options in
            if notify {
                options.headPollInterval = nil  // NOTIFY alone
            } else {
                options.schema.notifyChannel = nil  // the shared head probe alone
            }
        }
        let running = try RunningWorker(database: self.database, projections: [probe], options: options, logger: self.logger)
        try await eventually("the probe projection is idle", timeout: Self.patience) { running.status("latency_probe")?.state == .idle }
        let seconds = self.liveSeconds
        let database = self.database
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    let connection = try await PostgresConnection.connect(database)
                    let clock = ContinuousClock()
                    let start = clock.now
                    let interval = Duration.milliseconds(4)  // 250 events/s per writer, 1,000/s in total
                    for tick in 0..<(seconds * 250) {
                        try await clock.sleep(until: start + interval * tick)
                        let event = Event(aggregateType: "Clock", aggregateID: "writer-\(writer)", eventType: "Tick", payload: Array("{}".utf8))
                        try await EventStore().appendInOwnTransaction([event], expected: .any, on: connection)
                    }
                }
            }
            try await group.waitForAll()
        }
        let head = try await EventStore().latestPosition(on: admin)
        try await eventually("the probe reaches the head", timeout: Self.patience) { (running.status("latency_probe")?.position ?? 0) >= head }
        try await running.finish()
        return try await Percentiles.commitDelays(on: admin)
    }

    /// Append throughput of 4 writers (single-event appends, as fast as they go) for 5 s.
    func writerThroughput(_ admin: PostgresConnection, trigger: Bool) async throws -> Double {
        try await self.freshSchema(admin, notifyTrigger: trigger)
        let database = self.database
        let clock = self.clock
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    let connection = try await PostgresConnection.connect(database)
                    let deadline = clock.now + .seconds(5)
                    var count = 0
                    while clock.now < deadline {
                        let event = Event(aggregateType: "Order", aggregateID: "w\(writer)-\(count)", eventType: "OrderPlaced",
                                          payload: Array(#"{"customer_id": "c", "currency": "EUR"}"#.utf8))
                        try await EventStore().appendInOwnTransaction([event], expected: .noStream, on: connection)
                        count += 1
                    }
                    return count
                }
            }
            var total = 0
            for try await count in group { total += count }
            return total
        }
        return Double(counts) / 5
    }

    /// 100 rolled-back appends, each followed by a committed one: delay until the committed
    /// event is in the read model (commit timestamp to commit timestamp).
    mutating func rollbackStall(_ admin: PostgresConnection) async throws -> Percentiles {
        try await self.freshSchema(admin)
        let probe = try SQLProjection(
            name: "latency_probe", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [("Kept", ["INSERT INTO latency_probe (position) VALUES ($global_position)"])])
        let running = try RunningWorker(database: self.database, projections: [probe], options: self.options(), logger: self.logger)
        try await eventually("the probe projection is idle", timeout: Self.patience) { running.status("latency_probe")?.state == .idle }
        let writer = try await PostgresConnection.connect(self.database)
        let store = EventStore()
        for round in 0..<100 {
            try await store.appendInOwnTransaction(
                [Event(aggregateType: "Order", aggregateID: "gone-\(round)", eventType: "Gone", payload: [0x7b, 0x7d])],
                expected: .noStream, rollback: true, on: writer)
            let kept = try await store.appendInOwnTransaction(
                [Event(aggregateType: "Order", aggregateID: "kept-\(round)", eventType: "Kept", payload: [0x7b, 0x7d])],
                expected: .noStream, on: writer)
            try await eventually("the kept event is applied", timeout: Self.patience, every: .milliseconds(1)) {
                (running.status("latency_probe")?.position ?? 0) >= kept[0]
            }
        }
        try await running.finish()
        let audited = try await admin.query("SELECT count(*) FROM consumer_gap_skips WHERE reason = 'aborted'")[0].decode(Int64.self, at: 0)
        self.results.rollbackAudited = audited
        return try await Percentiles.commitDelays(on: admin)
    }

    /// Peak RSS of the real daemon catching up 10 projections, then its idle RSS.
    mutating func memory(_ admin: PostgresConnection) async throws {
        guard let binary = self.daemonBinary else {
            print("memory: skipped (PROJECTIONIST_BIN not set)")
            return
        }
        try await self.freshSchema(admin)
        _ = try await Seeder.seedOrders(self.orders, on: admin)
        // Issue 13: the same run with the HTTP listener off, then on and scraped every second.
        let off = try await self.memoryRun(binary, listener: false, admin)
        let on = try await self.memoryRun(binary, listener: true, admin)
        self.results.peakRSSMiB = off.peak
        self.results.idleRSSMiB = off.idle
        self.results.idleAnonMiB = off.anon
        self.results.tenProjectionsEventsPerSecond = off.eventsPerSecond
        self.results.listener = on
    }

    /// Catches 10 (`BENCH_MEMORY_PROJECTIONS`) copies of the example projection up in one daemon,
    /// from empty tables, then lets it idle (`BENCH_IDLE_WAIT` s): its RSS and throughput.
    func memoryRun(_ binary: String, listener: Bool, _ admin: PostgresConnection) async throws -> MemoryFigures {
        let settings = ProcessInfo.processInfo.environment
        let count = Int(settings["BENCH_MEMORY_PROJECTIONS"] ?? "") ?? 10
        let idleWait = Double(settings["BENCH_IDLE_WAIT"] ?? "") ?? 3
        let names = (1...count).map { "order_overview_m\($0)" }
        try await CheckpointStore().remove(names, on: admin)
        for name in names { try await admin.execute(script: "DROP TABLE IF EXISTS \(name)") }
        let example = try String(contentsOf: self.repository.appendingPathComponent("systemd/projectionist.yaml"), encoding: .utf8)
        let projectionBlock = String(example[example.range(of: "  - name: order_overview_v1")!.lowerBound...])
        let port = HTTPGet.freePort()
        var yaml = "worker:\n  poll_interval: 100ms\n  max_poll_interval: 1s\nmetrics:\n  listen: \(listener ? "127.0.0.1:\(port)" : "\"\"")\nprojections:\n"
        for name in names { yaml += projectionBlock.replacingOccurrences(of: "order_overview_v1", with: name) + "\n" }
        let daemons = try await Daemons(binary: binary, configuration: yaml, database: self.connectionString)
        defer { daemons.killAll() }
        let daemon = try daemons.start()
        // A Prometheus stand-in: one scrape a second while the listener is on.
        let scraper = Task {
            var scrapes = 0
            while listener, !Task.isCancelled {
                if (try? HTTPGet.get(port: port, "/metrics"))?.status == 200 { scrapes += 1 }
                try? await Task.sleep(for: .seconds(1))
            }
            return scrapes
        }
        let head = try await EventStore().latestPosition(on: admin)
        let start = self.clock.now
        try await eventually("\(count) projections reach the head", timeout: Self.patience, every: .milliseconds(50)) {
            try await CheckpointStore().records(names, on: admin).filter({ $0.position == head }).count == count
        }
        let catchUpSeconds = (self.clock.now - start).seconds
        let peak = readStatus(daemon.pid, "VmHWM") / 1024
        try await Task.sleep(for: .seconds(idleWait))
        let figures = MemoryFigures(
            peak: peak, idle: readStatus(daemon.pid, "VmRSS") / 1024, anon: readStatus(daemon.pid, "RssAnon") / 1024,
            eventsPerSecond: Double(head) * Double(count) / catchUpSeconds)
        scraper.cancel()
        let scrapes = await scraper.value
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
        print(
            "memory (\(binary), listener \(listener ? "on, \(scrapes) scrapes" : "off")): peak \(String(format: "%.1f", figures.peak)) MiB catching up \(count) projections (\(Int(figures.eventsPerSecond)) events/s in all), idle \(String(format: "%.1f", figures.idle)) MiB (\(String(format: "%.1f", figures.anon)) MiB anonymous)")
        return figures
    }
}

/// One daemon's memory and throughput in the memory part.
struct MemoryFigures: Codable {
    var peak: Double
    var idle: Double
    var anon: Double
    var eventsPerSecond: Double
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A field of /proc/PID/status in KiB.
func readStatus(_ pid: Int32, _ field: String) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Double(line.split(separator: " ").dropFirst().first { Double($0) != nil } ?? "0") ?? 0
    }
    return 0
}

/// The middle value (the mean of the two middle ones for an even count).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func format(_ duration: Duration) -> String { String(format: "%.1f s", duration.seconds) }

extension Duration {
    var seconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}

/// p50, p99 and max in milliseconds.
struct Percentiles: Codable {
    var p50: Double
    var p99: Double
    var max: Double
    var count: Int64

    /// From latency_probe: read-model commit time minus the event's commit time.
    static func commitDelays(on connection: PostgresConnection) async throws -> Percentiles {
        let row = try await connection.query(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms), count(*)
            FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(l.xmin) - pg_xact_commit_timestamp(e.xmin)) * 1000 AS ms
                  FROM latency_probe l JOIN events e ON e.global_position = l.position) AS t
            """)[0]
        return Percentiles(
            p50: try row.decode(Double.self, at: 0), p99: try row.decode(Double.self, at: 1), max: try row.decode(Double.self, at: 2),
            count: try row.decode(Int64.self, at: 3))
    }

    var text: String { String(format: "p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d events)", self.p50, self.p99, self.max, self.count) }
}

/// Every figure of one run, printed as a table and written as JSON.
struct BenchResults: Codable {
    var events: Int64 = 0
    /// The Swift projection's statements (values extracted in Swift).
    var ceiling: Double = 0
    /// The SQL projection's statements (values extracted from `$payload` by the server).
    var ceilingSQL: Double = 0
    var catchUpSQL: Double = 0
    var catchUpSwift: Double = 0
    /// The Swift projection without pipelines in flight (`RuntimeOptions.pipelinesInFlight` off).
    var catchUpSwiftOneAtATime: Double = 0
    var scopedCatchUp: Double = 0
    var oracleDifferences: Int64 = 0
    var latencyNotify: Percentiles?
    var latencyPolling: Percentiles?
    var writersWithTrigger: Double = 0
    var writersWithoutTrigger: Double = 0
    var rollbackStall: Percentiles?
    var rollbackAudited: Int64 = 0
    var peakRSSMiB: Double = 0
    var idleRSSMiB: Double = 0
    /// The idle RSS without file-backed pages (the runtime's and libraries' code).
    var idleAnonMiB: Double = 0
    var tenProjectionsEventsPerSecond: Double = 0
    /// Issue 13: the memory part again with the HTTP listener on, scraped every second.
    var listener: MemoryFigures?
    /// Issue 11: the SQL projection caught up with partitions 1, 2 and 4.
    var partitionedCatchUps: [PartitionedCatchUp] = []
    /// Two daemons: from kill -9 of the holder to the other's claim, with `worker.lease_ttl` of
    /// `failoverLeaseTTL` seconds; the part after the old lease's expiry; after SIGTERM.
    var failover: Percentiles?
    var failoverPastExpiry: Percentiles?
    var failoverLeaseTTL: Double = 0
    var handover: Percentiles?
    /// Issue 12: a successor rebuilt beside the live version, under a reader, and swapped in.
    var rebuild: RebuildFigures?

    var table: String {
        func pct(_ value: Double, _ of: Double) -> String { of > 0 ? String(format: "%.0f %%", 100 * value / of) : "-" }
        func check(_ ok: Bool) -> String { ok ? "met" : "MISSED" }
        let triggerCost = self.writersWithoutTrigger > 0 ? 1 - self.writersWithTrigger / self.writersWithoutTrigger : 0
        var rows: [(String, String, String, String)] = [("events in the log", "\(self.events)", "", "")]
        if self.ceiling > 0 {
            rows += [
                ("ceiling, Swift projection's statements", "\(Int(self.ceiling)) events/s", "pipelined, 1,000 per transaction", ""),
                ("ceiling, SQL projection's statements", "\(Int(self.ceilingSQL)) events/s", "pipelined, 1,000 per transaction", ""),
                ("catch-up, SQL projection (YAML)", "\(Int(self.catchUpSQL)) events/s", "\(pct(self.catchUpSQL, self.ceilingSQL)) of its ceiling ≥ 92 %", check(self.catchUpSQL >= 0.92 * self.ceilingSQL)),
                ("catch-up, Swift projection", "\(Int(self.catchUpSwift)) events/s", "\(pct(self.catchUpSwift, self.ceiling)) of its ceiling ≥ 92 %", check(self.catchUpSwift >= 0.92 * self.ceiling)),
                ("  the same, one pipeline at a time", "\(Int(self.catchUpSwiftOneAtATime)) events/s", "\(pct(self.catchUpSwiftOneAtATime, self.ceiling)) of its ceiling", ""),
                ("scoped catch-up (5 % of the log)", "\(Int(self.scopedCatchUp)) events/s", String(format: "%.1f× unscoped ≥ 5×", self.catchUpSQL > 0 ? self.scopedCatchUp / self.catchUpSQL : 0), check(self.scopedCatchUp >= 5 * self.catchUpSQL)),
            ]
        }
        rows += self.scaleRows
        rows += self.rebuildRows
        rows.append(("read model vs oracle", "\(self.oracleDifferences) differing rows", "0", check(self.oracleDifferences == 0)))
        if let latency = self.latencyNotify {
            rows.append(("live latency, NOTIFY", latency.text, "p99 ≤ 20 ms", check(latency.p99 <= 20)))
        }
        if let latency = self.latencyPolling {
            rows.append(("live latency, polling only", latency.text, "p99 ≤ 100 ms", check(latency.p99 <= 100)))
        }
        if self.writersWithoutTrigger > 0 {
            rows.append(("writers, notify trigger", "\(Int(self.writersWithTrigger)) appends/s", String(format: "cost %.1f %% (default decided at 5 %%)", 100 * triggerCost), ""))
            rows.append(("writers, no trigger", "\(Int(self.writersWithoutTrigger)) appends/s", "", ""))
        }
        if let stall = self.rollbackStall {
            rows.append(("rollback-gap stall", stall.text, "p99 ≤ 50 ms", check(stall.p99 <= 50)))
        }
        if self.peakRSSMiB > 0 {
            rows.append(("RSS, catch-up with 10 projections", String(format: "%.1f MiB peak", self.peakRSSMiB), "≤ 60 MB", check(self.peakRSSMiB * 1.048576 <= 60)))
            rows.append(("RSS, idle", String(format: "%.1f MiB (%.1f MiB anonymous)", self.idleRSSMiB, self.idleAnonMiB), "≤ 25 MB", check(self.idleRSSMiB * 1.048576 <= 25)))
            if let on = self.listener {
                let cost = 1 - on.eventsPerSecond / self.tenProjectionsEventsPerSecond
                rows.append((
                    "10 projections, HTTP listener on (scraped 1/s)", String(format: "%.0f vs %.0f events/s off", on.eventsPerSecond, self.tenProjectionsEventsPerSecond),
                    String(format: "cost %.1f %% ≤ 3 %%", 100 * cost), check(cost <= 0.03)))
                rows.append(("  RSS with the listener, idle", String(format: "%.1f MiB (%.1f anonymous)", on.idle, on.anon), "≤ 40 MiB", check(on.idle <= 40)))
                rows.append(("  RSS with the listener, peak", String(format: "%.1f MiB", on.peak), "≤ 60 MiB", check(on.peak <= 60)))
            }
        }
        let widths = (rows.map(\.0.count).max()!, rows.map(\.1.count).max()!, rows.map(\.2.count).max()!)
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        return rows.map { "| \(pad($0.0, widths.0)) | \(pad($0.1, widths.1)) | \(pad($0.2, widths.2)) | \(pad($0.3, 6)) |" }
            .joined(separator: "\n")
    }
}

/// CPU seconds the whole machine spent busy (not idle, not waiting for I/O), from /proc/stat.
func machineBusyCPUSeconds() -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first else { return 0 }
    let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard ticks.count >= 5 else { return 0 }
    return (ticks.reduce(0, +) - ticks[3] - ticks[4]) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// User + system CPU seconds of this process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
