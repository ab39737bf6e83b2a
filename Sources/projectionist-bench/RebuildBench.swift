import EventStore
import Foundation
import Postgres
import Projections
import TestSupport

// Issue 12's measurement: a successor (`replaces`) rebuilt from 0 beside the live version while
// a reader queries the published view every 10 ms and writers append, then swapped in.

extension Bench {
    /// The view the projections publish.
    static let publishedView = "order_overview"

    /// The seeded log rebuilt by `order_overview_v2` (replacing the live `order_overview_v1`,
    /// both publishing `order_overview`) in the static daemon, against a plain catch-up of the
    /// same projection in the same daemon before and after; a reader on the view throughout.
    mutating func rebuild(_ admin: PostgresConnection) async throws {
        guard let binary = self.daemonBinary else {
            print("rebuild: skipped (PROJECTIONIST_BIN not set)")
            return
        }
        let settings = ProcessInfo.processInfo.environment
        let appendsPerSecond = max(0, Int(settings["BENCH_REBUILD_APPENDS"] ?? "") ?? 100)
        try await self.seedLog(admin)
        var figures = RebuildFigures()
        figures.appendsPerSecondTarget = appendsPerSecond
        figures.inProcessCatchUpSQL = self.results.catchUpSQL > 0 ? self.results.catchUpSQL : nil

        var worker = "worker:\n  poll_interval: 100ms\n  max_poll_interval: 1s\n"
        if let size = settings["BENCH_BATCH_SIZE"].flatMap(Int.init) { worker += "  batch_size: \(size)\n" }
        worker = "metrics:\n  listen: \"\"\n" + worker  // no HTTP listener: daemons come and go here
        let plainYAML = worker + "projections:\n" + (try self.rebuildProjectionYAML("order_overview_plain", extraColumn: true))
        let v1YAML = try self.rebuildProjectionYAML("order_overview_v1", publish: true)
        let v2YAML = try self.rebuildProjectionYAML("order_overview_v2", publish: true, replaces: "order_overview_v1", extraColumn: true)

        // A plain catch-up of v2's projection (no publish, no replaces), alone in a daemon.
        let plain = try await Daemons(binary: binary, configuration: plainYAML, database: self.connectionString)
        defer { plain.killAll() }
        let plainBefore = try await self.daemonCatchUp(plain, unit: "order_overview_plain", admin)
        await Self.stop(plainBefore.daemon)
        figures.plainCatchUps.append(plainBefore.run)
        print("rebuild: plain catch-up (daemon): \(plainBefore.run.text)")

        // v1, published, caught up by its own daemon: the same projection alone, a second plain catch-up.
        let live = try await Daemons(binary: binary, configuration: worker + "projections:\n" + v1YAML, database: self.connectionString)
        defer { live.killAll() }
        let v1 = try await self.daemonCatchUp(live, unit: "order_overview_v1", admin)
        figures.plainCatchUps.append(v1.run)
        print("  v1 caught up by its daemon (pid \(v1.daemon.pid)): \(v1.run.text); the view \(Self.publishedView) serves it")

        // Readers on connections of their own, from here to the end.
        let reference = self.clock.now
        let referenceEpoch = try await self.serverEpoch(at: reference, admin)
        let readersStop = StopFlag()
        let writersStop = StopFlag()
        defer {
            readersStop.set()
            writersStop.set()
        }
        let database = self.database
        let reader = Task { try await Self.read(database, prepared: false, reference: reference, stop: readersStop) }
        let preparedReader = Task { try await Self.read(database, prepared: true, reference: reference, stop: readersStop) }
        try await Task.sleep(for: .seconds(1))
        let writer = Task { try await Self.write(database, perSecond: appendsPerSecond, reference: reference, stop: writersStop) }
        let writingSince = self.clock.now
        // The traffic alone for 3 s (v1 keeping up with the writers, the readers): its CPU.
        try await Task.sleep(for: .seconds(1))
        let trafficPostmaster = postmasterPID(backend: await admin.backendPID)
        let trafficStart = (self.clock.now, CPUSnapshot(daemon: v1.daemon.pid, postmaster: trafficPostmaster))
        try await Task.sleep(for: .seconds(3))
        figures.traffic = CPUSnapshot(daemon: v1.daemon.pid, postmaster: trafficPostmaster)
            .run(since: trafficStart.1, seconds: (self.clock.now - trafficStart.0).seconds, events: 0)
        print("  traffic alone (v1 live, \(appendsPerSecond) appends/s, readers): \(figures.traffic.cpuText)")

        // v2 added: `migrate` with both (creates v2's table) while v1's daemon runs and the
        // writers write, then the daemon restarted with both.
        // A failed migrate (it can lose a deadlock to a writer) is recorded and run again.
        let migrateStart = (self.clock.now - reference).seconds
        var added: Daemons?
        for attempt in 1...3 {
            do {
                added = try await Daemons(binary: binary, configuration: worker + "projections:\n" + v1YAML + "\n" + v2YAML, database: self.connectionString)
                break
            } catch let error as BenchError where attempt < 3 {
                figures.migrateErrors.append(error.description)
                print("  migrate failed (attempt \(attempt)), running it again: \(error.description.prefix(500))")
            }
        }
        let both = added!
        defer { both.killAll() }
        let migrateEnd = (self.clock.now - reference).seconds
        await Self.stop(v1.daemon)
        let target = try await EventStore().latestPosition(on: admin)
        let postmaster = postmasterPID(backend: await admin.backendPID)
        let rebuildStart = self.clock.now
        let daemon = try both.start()
        let cpuStart = CPUSnapshot(daemon: daemon.pid, postmaster: postmaster)
        var cpuCaughtUp: CPUSnapshot?
        print("  v2 added (replaces v1, publishes \(Self.publishedView), one more column): daemon pid \(daemon.pid) runs both; \(appendsPerSecond) appends/s meanwhile")
        var caughtUp: ContinuousClock.Instant?
        var retiredEpoch: Double?
        var v1MaxLag: Int64 = 0
        var v1Samples = 0
        try await eventually("v2 rebuilt and swapped in", timeout: Self.patience, every: .milliseconds(10)) {
            guard daemon.process.isRunning else { throw BenchError("the daemon exited: \(daemon.stderr.suffix(2000))") }
            let row = try await admin.query(
                """
                SELECT (SELECT coalesce(max(global_position), 0) FROM events),
                    (SELECT last_position FROM consumer_checkpoints WHERE consumer_name = 'order_overview_v1'),
                    (SELECT last_position FROM consumer_checkpoints WHERE consumer_name = 'order_overview_v2'),
                    (SELECT extract(epoch FROM retired_at)::float8 FROM consumer_checkpoints WHERE consumer_name = 'order_overview_v1')
                """)[0]
            let head = try row.decode(Int64.self, at: 0)
            let v1Position = try row.decode(Int64?.self, at: 1)
            let v2Position = try row.decode(Int64?.self, at: 2) ?? 0
            retiredEpoch = try row.decode(Double?.self, at: 3)
            if caughtUp == nil, v2Position >= target {
                caughtUp = self.clock.now
                cpuCaughtUp = CPUSnapshot(daemon: daemon.pid, postmaster: postmaster)
            }
            if caughtUp == nil, retiredEpoch == nil, let v1Position {
                v1MaxLag = max(v1MaxLag, head - v1Position)
                v1Samples += 1
            }
            return caughtUp != nil && retiredEpoch != nil
        }
        let swapSeenAt = self.clock.now
        figures.events = try await self.orderEvents(upTo: target, admin)
        figures.rebuild = cpuCaughtUp!.run(since: cpuStart, seconds: (caughtUp! - rebuildStart).seconds, events: figures.events)
        figures.v1MaxLagEvents = v1MaxLag
        let retiredAt = retiredEpoch! - referenceEpoch  // seconds since `reference`, on this clock
        figures.caughtUpToRetiredSeconds = retiredAt - (caughtUp! - reference).seconds
        print(String(
            format: "  v2 rebuilt: %@; v1 retired %.2f s after v2 caught up; v1's largest lag meanwhile %lld events (%d samples)",
            figures.rebuild.text, figures.caughtUpToRetiredSeconds, v1MaxLag, v1Samples))

        // The readers go on for a while after the swap, then the writers stop and v2 reaches the head.
        try await self.clock.sleep(until: swapSeenAt + .milliseconds(1500))
        writersStop.set()
        let appends = try await writer.value
        figures.appendsPerSecond = Double(appends.filter { $0.error == nil }.count) / (self.clock.now - writingSince).seconds
        figures.writers = try await WriterFigures(appends, migrate: migrateStart...migrateEnd, retiredAt: retiredAt, admin)
        let head = try await EventStore().latestPosition(on: admin)
        try await eventually("v2 reaches the head", timeout: Self.patience, every: .milliseconds(10)) {
            try await CheckpointStore().records(["order_overview_v2"], on: admin).first.map { $0.position >= head } ?? false
        }
        readersStop.set()
        let samples = try await reader.value
        let preparedSamples = try await preparedReader.value
        let differences = try await OrderWorkload.oracleDifferences(on: admin, table: "order_overview_v2")
        self.results.oracleDifferences += differences
        figures.oracleDifferences = differences
        daemon.signal(SIGTERM)
        let output = await daemon.finish()
        figures.swapTransactionSeconds = Self.loggedSwapSeconds(output.stderr)
        figures.swapWaitedForReaders = output.stderr.contains("The swap waits for readers")
        figures.reader = ReaderFigures(samples, retiredAt: retiredAt)
        figures.preparedReader = ReaderFigures(preparedSamples, retiredAt: retiredAt)

        // The plain catch-up again (the server's speed drifts): the ratio is to the median of the three.
        try await admin.execute(script: "TRUNCATE order_overview_plain")
        try await CheckpointStore().remove(["order_overview_plain"], on: admin)
        let plainAfter = try await self.daemonCatchUp(plain, unit: "order_overview_plain", admin)
        await Self.stop(plainAfter.daemon)
        figures.plainCatchUps.append(plainAfter.run)
        figures.plainEventsPerSecond = median(figures.plainCatchUps.map(\.eventsPerSecond))
        figures.ratio = figures.rebuild.eventsPerSecond / figures.plainEventsPerSecond
        print("  plain catch-up again: \(plainAfter.run.text)")

        for line in figures.report { print("  \(line)") }
        self.results.rebuild = figures
    }

    /// One projection of the YAML example as `name` (its table too), optionally publishing
    /// `order_overview`, replacing another, and with one more trailing column
    /// (`rebuilt boolean DEFAULT true`, which the handlers leave alone).
    func rebuildProjectionYAML(_ name: String, publish: Bool = false, replaces: String? = nil, extraColumn: Bool = false) throws -> String {
        let example = try String(contentsOf: self.repository.appendingPathComponent("systemd/projectionist.yaml"), encoding: .utf8)
        var block = String(example[example.range(of: "  - name: order_overview_v1")!.lowerBound...])
            .replacingOccurrences(of: "order_overview_v1", with: name)
        var keys = ""
        if publish { keys += "    publish: \(Self.publishedView)\n" }
        if let replaces { keys += "    replaces: \(replaces)\n" }
        block = block.replacingOccurrences(of: "  - name: \(name)\n", with: "  - name: \(name)\n" + keys)
        if extraColumn {
            let last = "          version BIGINT NOT NULL\n      );"
            guard block.contains(last) else { throw BenchError("the example's CREATE TABLE no longer ends with `version BIGINT NOT NULL );`") }
            block = block.replacingOccurrences(of: last, with: "          version BIGINT NOT NULL,\n          rebuilt BOOLEAN NOT NULL DEFAULT true\n      );")
        }
        return block.hasSuffix("\n") ? block : block + "\n"
    }

    /// Starts a daemon of `daemons` and waits (polling every 10 ms) until `unit`'s checkpoint
    /// reaches the head as it was at the start; the daemon keeps running.
    func daemonCatchUp(_ daemons: Daemons, unit: String, _ admin: PostgresConnection) async throws -> (daemon: RunningProcess, run: DaemonRun) {
        let head = try await EventStore().latestPosition(on: admin)
        let postmaster = postmasterPID(backend: await admin.backendPID)
        let start = self.clock.now
        let daemon = try daemons.start()
        let cpuStart = CPUSnapshot(daemon: daemon.pid, postmaster: postmaster)
        var cpuEnd: CPUSnapshot?
        try await eventually("\(unit) reaches the head", timeout: Self.patience, every: .milliseconds(10)) {
            guard daemon.process.isRunning else { throw BenchError("daemon \(daemon.pid) exited: \(daemon.stderr.suffix(2000))") }
            guard try await CheckpointStore().records([unit], on: admin).first.map({ $0.position >= head }) ?? false else { return false }
            cpuEnd = CPUSnapshot(daemon: daemon.pid, postmaster: postmaster)
            return true
        }
        let seconds = (self.clock.now - start).seconds
        return (daemon, cpuEnd!.run(since: cpuStart, seconds: seconds, events: try await self.orderEvents(upTo: head, admin)))
    }

    /// The projection's share of the log: Order events up to `position`.
    func orderEvents(upTo position: Int64, _ admin: PostgresConnection) async throws -> Int64 {
        try await admin.query("SELECT count(*) FROM events WHERE aggregate_type = 'Order' AND global_position <= $1", [position])[0]
            .decode(Int64.self, at: 0)
    }

    /// The server's clock (epoch seconds) at `instant` of this one, from the middle of a round trip.
    func serverEpoch(at instant: ContinuousClock.Instant, _ admin: PostgresConnection) async throws -> Double {
        let sent = self.clock.now
        let epoch = try await admin.query("SELECT extract(epoch FROM clock_timestamp())::float8")[0].decode(Double.self, at: 0)
        let middle = sent + (self.clock.now - sent) / 2
        return epoch - (middle - instant).seconds
    }

    /// SIGTERM, and waits for the exit.
    static func stop(_ daemon: RunningProcess) async {
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
    }

    /// `swap.seconds` of the daemon's "Swapped the published views" line, if it logged one.
    static func loggedSwapSeconds(_ log: String) -> Double? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("Swapped the published views") }),
            let range = line.range(of: "swap.seconds=")
        else { return nil }
        return Double(line[range.upperBound...].prefix { !$0.isWhitespace })
    }

    /// `SELECT * FROM order_overview LIMIT 50` every 10 ms (the next right away if one took
    /// longer) until `stop`, on a connection of its own; with `prepared`, as a named prepared
    /// statement (prepared again under a new name after an error, as drivers with statement
    /// caches do). Every query's start (seconds since `reference`), latency, columns or error.
    static func read(_ database: ConnectionConfiguration, prepared: Bool, reference: ContinuousClock.Instant, stop: StopFlag) async throws
        -> [ReaderSample]
    {
        let connection = try await PostgresConnection.connect(database)
        let sql = "SELECT * FROM \(Self.publishedView) LIMIT 50"
        var generation = 0
        if prepared { try await connection.prepare("reader_0", sql) }
        let clock = ContinuousClock()
        var samples: [ReaderSample] = []
        samples.reserveCapacity(10_000)
        var next = clock.now
        while !stop.isSet {
            let started = clock.now
            do {
                let result = prepared ? try await connection.queryPrepared("reader_\(generation)") : try await connection.query(sql)
                samples.append(ReaderSample(
                    start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: result.columnCount))
            } catch {
                let text = (error as? PostgresError).map { "\($0.sqlState ?? "-") \($0.message)" } ?? "\(error)"
                samples.append(ReaderSample(
                    start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: nil, error: text))
                if prepared {
                    generation += 1
                    try? await connection.prepare("reader_\(generation)", sql)
                }
            }
            next = max(next + .milliseconds(10), clock.now)
            try await clock.sleep(until: next)
        }
        await connection.close()
        return samples
    }

    /// Appends `perSecond` single-event appends a second (orders `live-N`: placed, 1–3 lines,
    /// confirmed, one event per transaction) until `stop`; an append that fails is recorded and
    /// tried again, as an application would. - Returns: every attempt (start on `reference`'s clock).
    static func write(_ database: ConnectionConfiguration, perSecond: Int, reference: ContinuousClock.Instant, stop: StopFlag) async throws
        -> [ReaderSample]
    {
        guard perSecond > 0 else { return [] }
        let connection = try await PostgresConnection.connect(database)
        let clock = ContinuousClock()
        let interval = Duration.seconds(1) / perSecond
        let start = clock.now
        var count = 0, order = 0
        var pending: [Event] = []
        var attempts: [ReaderSample] = []
        while !stop.isSet {
            try await clock.sleep(until: start + interval * count)
            if pending.isEmpty {
                pending = OrderWorkload.events(orderID: "live-\(order)", lines: 1 + order % 3, seed: order)
                order += 1
            }
            let started = clock.now
            do {
                try await EventStore().appendInOwnTransaction([pending[0]], expected: .any, on: connection)
                attempts.append(ReaderSample(start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: 1))
                pending.removeFirst()
            } catch {
                attempts.append(ReaderSample(
                    start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: nil, error: Self.describe(error)))
            }
            count += 1
        }
        await connection.close()
        return attempts
    }

    /// SQLSTATE, message and detail of a server error.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PostgresError else { return "\(error)" }
        return "\(error.sqlState ?? "-") \(error.message)" + (error.detail.map { " (\($0))" } ?? "")
    }
}

/// CPU seconds so far: one daemon's, the PostgreSQL cluster's, this process's and the machine's busy time.
struct CPUSnapshot {
    var daemon: Double
    var postgres: Double?
    var bench: Double
    var machine: Double

    init(daemon pid: Int32, postmaster: Int32?) {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        self.daemon = procStat(pid).flatMap { $0.count > 12 ? $0[11...12].compactMap(Double.init).reduce(0, +) / ticks : nil } ?? 0
        self.postgres = postmaster.flatMap(serverCPUSeconds(postmaster:))
        self.bench = processCPUSeconds()
        self.machine = machineBusyCPUSeconds()
    }

    func run(since start: CPUSnapshot, seconds: Double, events: Int64) -> DaemonRun {
        DaemonRun(
            seconds: seconds, events: events, daemonCores: (self.daemon - start.daemon) / seconds,
            postgresCores: self.postgres.flatMap { end in start.postgres.map { (end - $0) / seconds } },
            benchCores: (self.bench - start.bench) / seconds, machineCores: (self.machine - start.machine) / seconds,
            eventsPerSecond: Double(events) / seconds)
    }
}

/// One catch-up by a daemon: Order events to the head at its start, wall time, and CPU in cores
/// on average (the daemon's, PostgreSQL's, this process's and the whole machine's busy time,
/// which counts anyone else's work on it too).
struct DaemonRun: Codable {
    var seconds = 0.0
    var events: Int64 = 0
    var daemonCores = 0.0
    var postgresCores: Double?
    var benchCores = 0.0
    var machineCores = 0.0
    var eventsPerSecond = 0.0

    var text: String { String(format: "%.0f events/s (%lld Order events in %.2f s); ", self.eventsPerSecond, self.events, self.seconds) + self.cpuText }

    var cpuText: String {
        String(
            format: "daemon %.2f cores, PostgreSQL %@, bench %.2f, machine busy %.2f of %d", self.daemonCores,
            self.postgresCores.map { String(format: "%.2f", $0) } ?? "?", self.benchCores, self.machineCores,
            ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// What the writers met: errors (with the relations a deadlock names), latencies, and the
/// longest append while `projectionist migrate` ran.
struct WriterFigures: Codable {
    var appends = 0
    var errors: [String] = []
    var p99 = 0.0
    var max = 0.0
    var migrateMilliseconds = 0.0
    var longestDuringMigrate = 0.0
    /// The longest appends, with their start relative to v1's `retired_at`.
    var longest: [String] = []

    init() {}

    init(_ attempts: [ReaderSample], migrate: ClosedRange<Double>, retiredAt: Double, _ admin: PostgresConnection) async throws {
        self.appends = attempts.filter { $0.error == nil }.count
        self.longest = attempts.sorted { $0.milliseconds > $1.milliseconds }.prefix(3).map {
            String(format: "%.1f ms at %+.2f s from retired_at", $0.milliseconds, $0.start - retiredAt)
        }
        let latencies = Percentiles(milliseconds: attempts.map(\.milliseconds))
        (self.p99, self.max) = (latencies.p99, latencies.max)
        self.migrateMilliseconds = (migrate.upperBound - migrate.lowerBound) * 1000
        self.longestDuringMigrate = attempts.filter { $0.end >= migrate.lowerBound && $0.start <= migrate.upperBound }.map(\.milliseconds).max() ?? 0
        for attempt in attempts {
            guard var error = attempt.error else { continue }
            // "relation 16385 of database 5" → its name.
            for match in Set(error.matches(of: /relation (\d+)/).compactMap { UInt32($0.output.1) }) {
                if let name = try? await admin.query("SELECT $1::oid::regclass::text", [Int64(match)]).first?.decode(String.self, at: 0) {
                    error = error.replacingOccurrences(of: "relation \(match) ", with: "relation \(match) (\(name)) ")
                }
            }
            let during = attempt.end >= migrate.lowerBound && attempt.start <= migrate.upperBound
            self.errors.append(String(format: "%@ (%.0f ms; %@)", error, attempt.milliseconds, during ? "while migrate ran" : "migrate not running"))
        }
    }
}

/// A flag set once, read from other tasks.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { self.lock.withLock { self.value } }
    func set() { self.lock.withLock { self.value = true } }
}

/// One reader query: when it started (seconds on the benchmark's clock), how long it took, and
/// the columns it got (7: v1's table, 8: v2's) or its error.
struct ReaderSample: Sendable {
    var start: Double
    var milliseconds: Double
    var columns: Int?
    var error: String?
    var end: Double { self.start + self.milliseconds / 1000 }
}

/// What one reader saw.
struct ReaderFigures: Codable {
    var queries = 0
    var errors: [String] = []
    var p50 = 0.0
    var p99 = 0.0
    var max = 0.0
    /// v1's retirement (its transaction's start, `retired_at`) to the reader's first query that
    /// returned v2's columns (that query's start), in ms.
    var firstV2AfterRetiredMilliseconds: Double?
    /// Queries that got v1's columns after one had got v2's (0 expected).
    var v1AfterV2 = 0
    /// The swap window: from a second before `retired_at` to a second after the first query
    /// that returned v2's columns; its queries (any that overlap it) and the longest.
    var windowQueries = 0
    var windowMax = 0.0
    /// The longest query outside the window (the rebuild's load, no swap).
    var outsideWindowMax = 0.0
    /// The window's longest queries, with their start relative to `retired_at` (ms).
    var windowLongest: [String] = []

    init(_ samples: [ReaderSample], retiredAt: Double) {
        self.queries = samples.count
        for sample in samples {
            if let error = sample.error { self.errors.append(String(format: "%+.0f ms from retired_at: %@", (sample.start - retiredAt) * 1000, error)) }
        }
        let latencies = Percentiles(milliseconds: samples.map(\.milliseconds))
        (self.p50, self.p99, self.max) = (latencies.p50, latencies.p99, latencies.max)
        let firstV2 = samples.firstIndex { $0.columns == 8 }
        if let firstV2 {
            self.firstV2AfterRetiredMilliseconds = (samples[firstV2].start - retiredAt) * 1000
            self.v1AfterV2 = samples[firstV2...].filter { $0.columns == 7 }.count
        }
        let from = retiredAt - 1
        let to = (firstV2.map { samples[$0].end } ?? retiredAt) + 1
        let window = samples.filter { $0.end >= from && $0.start <= to }
        self.windowQueries = window.count
        self.windowMax = window.map(\.milliseconds).max() ?? 0
        self.outsideWindowMax = samples.filter { !($0.end >= from && $0.start <= to) }.map(\.milliseconds).max() ?? 0
        self.windowLongest = window.sorted { $0.milliseconds > $1.milliseconds }.prefix(3).map {
            String(format: "%.1f ms at %+.0f ms", $0.milliseconds, ($0.start - retiredAt) * 1000)
        }
    }

    var text: String {
        String(format: "%d queries, %d errors; p50 %.1f ms, p99 %.1f ms, max %.1f ms", self.queries, self.errors.count, self.p50, self.p99, self.max)
    }
}

/// Issue 12's figures.
struct RebuildFigures: Codable {
    /// Order events up to the head at v2's start (what v2 rebuilt).
    var events: Int64 = 0
    /// v2 beside v1 in one daemon, from its start until v2 reached that head.
    var rebuild = DaemonRun()
    /// 3 s of the traffic alone before v2 came: v1's daemon keeping up with the writers, the readers.
    var traffic = DaemonRun()
    /// The same projection caught up alone in a daemon: before, as v1, after; and their median.
    var plainCatchUps: [DaemonRun] = []
    var plainEventsPerSecond = 0.0
    /// Rebuild over the plain catch-ups' median.
    var ratio = 0.0
    /// The same run's in-process catch-up of the SQL projection (the throughput part), if it ran.
    var inProcessCatchUpSQL: Double?
    var appendsPerSecondTarget = 0
    var appendsPerSecond = 0.0
    var writers = WriterFigures()
    /// `projectionist migrate` runs that failed (run again up to 3 times in all).
    var migrateErrors: [String] = []
    /// v1's largest lag behind the head while v2 rebuilt (sampled every 10 ms).
    var v1MaxLagEvents: Int64 = 0
    /// From v2's checkpoint reaching the target to v1's `retired_at` (the swap's transaction start).
    var caughtUpToRetiredSeconds = 0.0
    /// The daemon's own timing of the swap transaction (its log), if it logged it.
    var swapTransactionSeconds: Double?
    /// The daemon logged that the swap had to wait for readers (and retried).
    var swapWaitedForReaders = false
    var oracleDifferences: Int64 = 0
    var reader = ReaderFigures([], retiredAt: 0)
    /// A second reader running the same query as a named prepared statement.
    var preparedReader = ReaderFigures([], retiredAt: 0)

    init() {}

    var report: [String] {
        var lines = [
            String(
                format: "rebuild %.0f events/s vs plain catch-up %.0f events/s (median of %@): %.2f×",
                self.rebuild.eventsPerSecond, self.plainEventsPerSecond,
                self.plainCatchUps.map { String(format: "%.0f", $0.eventsPerSecond) }.joined(separator: ", "), self.ratio),
            String(
                format: "writers: %.0f appends/s (asked %d), append p99 %.1f ms, max %.1f ms; migrate took %.0f ms, the longest append meanwhile %.1f ms; %d errors",
                self.appendsPerSecond, self.appendsPerSecondTarget, self.writers.p99, self.writers.max, self.writers.migrateMilliseconds,
                self.writers.longestDuringMigrate, self.writers.errors.count),
        ]
        lines += ["rebuild: \(self.rebuild.text)", "traffic alone: \(self.traffic.cpuText)"] + self.plainCatchUps.map { "plain: \($0.text)" }
        lines.append("longest appends: \(self.writers.longest.joined(separator: ", "))")
        for error in self.writers.errors.prefix(5) { lines.append("  writer error: \(error)") }
        for error in self.migrateErrors { lines.append("  migrate error: \(error.prefix(500))") }
        lines += [
            String(format: "v1's largest lag during the rebuild: %lld events", self.v1MaxLagEvents),
            String(
                format: "swap: retired_at %.2f s after v2 caught up; the daemon's swap transaction %@; it %@ for readers",
                self.caughtUpToRetiredSeconds, self.swapTransactionSeconds.map { String(format: "%.1f ms", $0 * 1000) } ?? "not logged",
                self.swapWaitedForReaders ? "waited (and retried)" : "did not wait"),
            "v2 vs oracle: \(self.oracleDifferences) differing rows",
        ]
        for (name, reader) in [("reader", self.reader), ("prepared reader", self.preparedReader)] {
            lines.append("\(name): \(reader.text)")
            lines.append(String(
                format: "  first v2 columns %@ after retired_at; swap window (±1 s): %d queries, longest %.1f ms (%@); outside it longest %.1f ms; v1 columns after v2: %d",
                reader.firstV2AfterRetiredMilliseconds.map { String(format: "%.0f ms", $0) } ?? "never", reader.windowQueries, reader.windowMax,
                reader.windowLongest.joined(separator: ", "), reader.outsideWindowMax, reader.v1AfterV2))
            for error in reader.errors.prefix(5) { lines.append("  error \(error)") }
            if reader.errors.count > 5 { lines.append("  ... \(reader.errors.count - 5) more errors") }
        }
        return lines
    }
}

extension BenchResults {
    /// The rows of issue 12's measurement, when it ran.
    var rebuildRows: [(String, String, String, String)] {
        guard let figures = self.rebuild else { return [] }
        var rebuild = String(format: "%.0f events/s (%.2f× plain catch-up, %.0f)", figures.rebuild.eventsPerSecond, figures.ratio, figures.plainEventsPerSecond)
        if let inProcess = figures.inProcessCatchUpSQL { rebuild += String(format: "; %.2f× in-process catch-up", figures.rebuild.eventsPerSecond / inProcess) }
        let reader = figures.reader
        return [
            ("rebuild beside live v1 (daemon, \(Int(figures.appendsPerSecond.rounded())) appends/s)", rebuild, "", ""),
            ("  swap after v2 caught up", String(format: "%.2f s (v1 lag ≤ %lld events meanwhile)", figures.caughtUpToRetiredSeconds, figures.v1MaxLagEvents), "(the swap monitor looks once a second)", ""),
            ("  reader errors (query every 10 ms)", "\(reader.errors.count) of \(reader.queries) queries", "0", reader.errors.isEmpty ? "met" : "MISSED"),
            ("  reader's longest wait at the swap (±1 s)", String(format: "%.1f ms (overall p99 %.1f ms, max %.1f ms)", reader.windowMax, reader.p99, reader.max), "≤ 50 ms", reader.windowMax <= 50 ? "met" : "MISSED"),
            ("  a prepared-statement reader", "\(figures.preparedReader.errors.count) errors of \(figures.preparedReader.queries) queries", "", ""),
            ("  writer errors (migrate, restart, swap)", "\(figures.writers.errors.count) of \(figures.writers.appends + figures.writers.errors.count) appends; \(figures.migrateErrors.count) migrate failures", "", ""),
            ("  longest append while migrate ran", String(format: "%.1f ms (migrate %.0f ms)", figures.writers.longestDuringMigrate, figures.writers.migrateMilliseconds), "", ""),
        ]
    }
}
