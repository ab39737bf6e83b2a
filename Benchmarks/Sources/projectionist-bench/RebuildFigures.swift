import EventStore
import Foundation
import Postgres
import Projections
import TestSupport

// The figures of the rebuild measurement and their rows in the table.

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

/// The rebuild measurement's figures.
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
    /// The rows of the rebuild measurement, when it ran.
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
