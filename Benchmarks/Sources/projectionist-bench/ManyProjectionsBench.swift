import EventStore
import Foundation
import Postgres
import Projections
import TestSupport

// Fifty projections on a budget of ten connections, catching up from 0 in one daemon.

extension Bench {
    /// Catches 50 (`BENCH_MANY_PROJECTIONS`) copies of the example projection up in one daemon
    /// with `database.max_connections: 10`, sampling the daemon's server connections every
    /// 10 ms and counting the rows it reads from `events`.
    mutating func manyProjections(_ admin: PostgresConnection) async throws {
        guard let binary = self.daemonBinary else {
            print("many projections: skipped (PROJECTIONIST_BIN not set)")
            return
        }
        let settings = ProcessInfo.processInfo.environment
        let count = Int(settings["BENCH_MANY_PROJECTIONS"] ?? "") ?? 50
        let budget = 10
        if try await EventStore().latestPosition(on: admin) == 0 {
            try await self.freshSchema(admin)
            _ = try await Seeder.seedOrders(self.orders, on: admin)
        }
        let names = (1...count).map { "order_overview_n\($0)" }
        try await CheckpointStore().remove(names, on: admin)
        for name in names { try await admin.execute(script: "DROP TABLE IF EXISTS \(name)") }
        let example = try String(contentsOf: self.repository.appendingPathComponent("systemd/projectionist.yaml"), encoding: .utf8)
        let projectionBlock = String(example[example.range(of: "  - name: order_overview_v1")!.lowerBound...])
        var yaml = "database:\n  max_connections: \(budget)\nworker:\n  poll_interval: 100ms\n  max_poll_interval: 1s\nmetrics:\n  listen: \"\"\nprojections:\n"
        for name in names { yaml += projectionBlock.replacingOccurrences(of: "order_overview_v1", with: name) + "\n" }
        let daemons = try await Daemons(binary: binary, configuration: yaml, database: self.connectionString)
        defer { daemons.killAll() }
        let rowsBefore = try await eventsRowsRead(on: admin)
        let head = try await EventStore().latestPosition(on: admin)
        let daemon = try daemons.start()
        // The daemon's backends: every application name it sets starts with `projectionist`.
        let database = self.database
        let sampler = Task {
            let connection = try await PostgresConnection.connect(database)
            var peak = 0
            while !Task.isCancelled {
                let open = try await connection.query(
                    """
                    SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                      AND application_name LIKE 'projectionist%' AND application_name NOT LIKE 'projectionist-bench%'
                    """, [])[0].decode(Int64.self, at: 0)
                peak = max(peak, Int(open))
                try? await Task.sleep(for: .milliseconds(10))
            }
            await connection.close()
            return peak
        }
        let start = self.clock.now
        try await eventually("\(count) projections reach the head", timeout: Self.patience, every: .milliseconds(50)) {
            try await CheckpointStore().records(names, on: admin).filter({ $0.position == head }).count == count
        }
        let seconds = (self.clock.now - start).seconds
        let peakRSS = readStatus(daemon.pid, "VmHWM") / 1024
        sampler.cancel()
        let peak = try await sampler.value
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
        // A backend's counters reach the statistics when it ends; wait until they settle.
        var rows = try await eventsRowsRead(on: admin) - rowsBefore
        for _ in 0..<20 {
            try await Task.sleep(for: .milliseconds(500))
            let now = try await eventsRowsRead(on: admin) - rowsBefore
            if now == rows { break }
            rows = now
        }
        let figures = ManyProjectionsFigures(
            projections: count, maxConnections: budget, peakConnections: peak, eventsPerSecond: Double(head) * Double(count) / seconds,
            rowsReadPerEvent: Double(rows) / Double(max(1, head)), peakRSSMiB: peakRSS)
        self.results.manyProjections = figures
        print(
            "many projections: \(count) on \(budget) connections: peak \(peak) connections, \(Int(figures.eventsPerSecond)) events/s in all, "
                + String(format: "%.2f rows read per event, peak RSS %.1f MiB", figures.rowsReadPerEvent, peakRSS))
    }

}

/// `--json`'s `manyProjections`.
struct ManyProjectionsFigures: Codable {
    var projections: Int
    var maxConnections: Int
    var peakConnections: Int
    var eventsPerSecond: Double
    var rowsReadPerEvent: Double
    var peakRSSMiB: Double
}
