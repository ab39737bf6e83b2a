import EventStore
import Foundation
import Logging
import Postgres
import ProjectionistApp
import Projections
import TestSupport

// The benchmark's figures, their table, and the small measuring helpers the parts share.

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
    /// The memory part again with the HTTP listener on, scraped every second.
    var listener: MemoryFigures?
    /// The SQL projection caught up with partitions 1, 2 and 4.
    var partitionedCatchUps: [PartitionedCatchUp] = []
    /// Two daemons: from kill -9 of the holder to the other's claim, with `worker.lease_ttl` of
    /// `failoverLeaseTTL` seconds; the part after the old lease's expiry; after SIGTERM.
    var failover: Percentiles?
    var failoverPastExpiry: Percentiles?
    var failoverLeaseTTL: Double = 0
    var handover: Percentiles?
    /// A successor rebuilt beside the live version, under a reader, and swapped in.
    var rebuild: RebuildFigures?
    /// Catch-up with `decrypt: true`.
    var encryption: EncryptionFigures?
    /// 50 projections on a budget of 10 connections.
    var manyProjections: ManyProjectionsFigures?
    /// on_error park with nothing parked against stop.
    var parking: ParkingFigures?

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
        rows += self.encryptionRows
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
        if let parking = self.parking {
            rows.append((
                "catch-up, on_error park, nothing parked", String(format: "%.0f vs %.0f events/s (stop)", parking.park, parking.stop),
                String(format: "cost %.1f %% within noise %.1f %%", 100 * parking.cost, 100 * parking.noise),
                check(parking.cost <= max(0.02, parking.noise))))
        }
        if let many = self.manyProjections {
            rows.append((
                "\(many.projections) projections, budget \(many.maxConnections)", "\(many.peakConnections) connections at most",
                "≤ \(many.maxConnections)", check(many.peakConnections <= many.maxConnections)))
            rows.append(("  rows read from events per event", String(format: "%.2f", many.rowsReadPerEvent), "≤ 1.5", check(many.rowsReadPerEvent <= 1.5)))
            if self.tenProjectionsEventsPerSecond > 0 {
                rows.append((
                    "  catch-up, all projections", String(format: "%.0f events/s", many.eventsPerSecond),
                    String(format: "%.2f× 10 projections' %.0f ≥ 0.9×", many.eventsPerSecond / self.tenProjectionsEventsPerSecond, self.tenProjectionsEventsPerSecond),
                    check(many.eventsPerSecond >= 0.9 * self.tenProjectionsEventsPerSecond)))
            }
            rows.append(("  peak RSS", String(format: "%.1f MiB", many.peakRSSMiB), "≤ 90 MiB", check(many.peakRSSMiB <= 90)))
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
