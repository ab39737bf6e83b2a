import Foundation
import Metrics
import Postgres

/// The process's own gauges, refreshed before each scrape: resident memory and the database
/// connections it has open.
struct ProcessMetrics: Sendable {
    let residentMemory = Gauge(label: "projectionist_resident_memory_bytes")
    let openConnections = Gauge(label: "projectionist_open_connections")

    func refresh() {
        if let bytes = Self.residentBytes() { self.residentMemory.record(bytes) }
        self.openConnections.record(PostgresConnection.openCount)
    }

    /// Resident set size from /proc/self/statm (pages × page size).
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
