import BuildInfo
import Metrics
import Postgres
import Synchronization

/// The process's own metrics, refreshed before each scrape: Prometheus's standard `process_*`
/// set (CPU, start time, memory, file descriptors), the build, and the database connections open.
struct ProcessMetrics: Sendable {
    let cpuSeconds = FloatingPointCounter(label: "process_cpu_seconds_total")
    let startTime = Gauge(label: "process_start_time_seconds")
    let residentMemory = Gauge(label: "process_resident_memory_bytes")
    let virtualMemory = Gauge(label: "process_virtual_memory_bytes")
    let openFileDescriptors = Gauge(label: "process_open_fds")
    let maxFileDescriptors = Gauge(label: "process_max_fds")
    let openConnections = Gauge(label: "projectionist_open_connections")
    /// The counter only goes up by increments: what was reported so far.
    private let reportedCPU = ReportedTotal()

    init() {
        Gauge(label: "projectionist_build_info", dimensions: [("version", BuildInfo.version), ("commit", BuildInfo.commit ?? "unknown")])
            .record(1)
    }

    func refresh() {
        if let stat = ProcessStat.current() {
            self.cpuSeconds.increment(by: self.reportedCPU.advance(to: stat.cpuSeconds))
            self.startTime.record(stat.startTimeSeconds)
            self.residentMemory.record(stat.residentMemoryBytes)
            self.virtualMemory.record(stat.virtualMemoryBytes)
        }
        if let open = ProcessStat.openFileDescriptors() { self.openFileDescriptors.record(open) }
        if let max = ProcessStat.maxFileDescriptors() { self.maxFileDescriptors.record(max) }
        self.openConnections.record(PostgresConnection.openCount)
    }
}

/// A running total reported to a counter by increments: how much it grew since the last report.
final class ReportedTotal: Sendable {
    private let reported = Mutex<Double>(0)

    /// The growth from the last reported total to `total` (never negative), now reported.
    func advance(to total: Double) -> Double {
        self.reported.withLock { reported in
            defer { reported = max(reported, total) }
            return max(0, total - reported)
        }
    }
}
