import EventStore
import Foundation
import Logging
import Postgres
import ProjectionistApp
import Projections
import TestSupport

// The memory part: one daemon catching up ten projections, then idle; with the HTTP listener off and on.

extension Bench {
    /// Peak RSS of the real daemon catching up 10 projections, then its idle RSS.
    mutating func memory(_ admin: PostgresConnection) async throws {
        guard let binary = self.daemonBinary else {
            print("memory: skipped (PROJECTIONIST_BIN not set)")
            return
        }
        try await self.freshSchema(admin)
        _ = try await Seeder.seedOrders(self.orders, on: admin)
        // The same run with the HTTP listener off, then on and scraped every second.
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

/// A field of /proc/PID/status in KiB.
func readStatus(_ pid: Int32, _ field: String) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Double(line.split(separator: " ").dropFirst().first { Double($0) != nil } ?? "0") ?? 0
    }
    return 0
}
