import Foundation
import Postgres

// scripts/bench runs this (release build) on its own PostgreSQL: the ceiling and the runtime
// side by side, partitioned catch-up, failover and handover between daemons, a rebuild beside
// the live version under a reader, latency, writer cost of notifications, rollback stalls and
// memory.
// Environment: PROJECTIONIST_BENCH_DATABASE (libpq string), PROJECTIONIST_BIN (the daemon),
// BENCH_ORDERS (default 50,000 orders ≈ 200,000 events), BENCH_LIVE_SECONDS (default 20),
// BENCH_ONLY=throughput, parking (on_error park against stop), scale, rebuild, encryption, memory, live (polling latency and the rollback stall) or many (memory, then 50 projections on 10 connections; one part, while tuning), BENCH_CPU (CPU seconds per
// catch-up), BENCH_ROUNDS (3: ceilings and catch-ups alternate, each figure the median of its
// rounds; the partitioned catch-ups too), BENCH_FAILOVERS (10 kill -9 and 10 SIGTERM takeovers),
// BENCH_REBUILD_APPENDS (100 single-event appends/s while the rebuild runs; 0: none),
// BENCH_MEMORY_PROJECTIONS (10) and BENCH_IDLE_WAIT (3 s) for the memory part, BENCH_MANY_PROJECTIONS (50), BENCH_DAEMON_PIDS
// (a file: the pid of every daemon started is appended to it, for scripts/bench to clean up).
// Arguments: --json FILE writes the figures as JSON.

func runBench() async throws {
    let environment = ProcessInfo.processInfo.environment
    let arguments = CommandLine.arguments
    let jsonPath = arguments.firstIndex(of: "--json").flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil }
    let connectionString = environment["PROJECTIONIST_BENCH_DATABASE"] ?? ""
    var bench = Bench(
        database: ConnectionConfiguration(connectionString: connectionString, applicationName: "projectionist-bench"),
        connectionString: connectionString,
        orders: Int(environment["BENCH_ORDERS"] ?? "") ?? 50_000,
        liveSeconds: Int(environment["BENCH_LIVE_SECONDS"] ?? "") ?? 20,
        daemonBinary: environment["PROJECTIONIST_BIN"],
        repository: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))

    let admin = try await PostgresConnection.connect(bench.database)
    switch environment["BENCH_ONLY"] {
    case "memory":
        try await bench.memory(admin)
    case "live":
        bench.results.latencyPolling = try await bench.liveLatency(admin, notify: false)
        print("live latency, polling only: \(bench.results.latencyPolling!.text)")
        bench.results.rollbackStall = try await bench.rollbackStall(admin)
        print("rollback-gap stall: \(bench.results.rollbackStall!.text), \(bench.results.rollbackAudited) positions audited aborted")
    case "many":
        try await bench.memory(admin)
        try await bench.manyProjections(admin)
    case "throughput":
        try await bench.throughput(admin)
    case "parking":
        try await bench.parking(admin)
    case "scale":
        try await bench.scale(admin)
    case "rebuild":
        try await bench.rebuild(admin)
    case "encryption":
        try await bench.encryption(admin)
    default:
        try await bench.throughput(admin)
        try await bench.parking(admin)
        try await bench.scale(admin)
        try await bench.rebuild(admin)
        try await bench.encryption(admin)
        bench.results.latencyNotify = try await bench.liveLatency(admin, notify: true)
        print("live latency, NOTIFY: \(bench.results.latencyNotify!.text)")
        bench.results.latencyPolling = try await bench.liveLatency(admin, notify: false)
        print("live latency, polling only: \(bench.results.latencyPolling!.text)")
        bench.results.writersWithTrigger = try await bench.writerThroughput(admin, trigger: true)
        bench.results.writersWithoutTrigger = try await bench.writerThroughput(admin, trigger: false)
        print("writers: \(Int(bench.results.writersWithTrigger)) appends/s with the notify trigger, \(Int(bench.results.writersWithoutTrigger)) without")
        bench.results.rollbackStall = try await bench.rollbackStall(admin)
        print("rollback-gap stall: \(bench.results.rollbackStall!.text), \(bench.results.rollbackAudited) positions audited aborted")
        try await bench.memory(admin)
        try await bench.manyProjections(admin)
    }

    print("")
    print(bench.results.table)
    if let jsonPath {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(bench.results).write(to: URL(fileURLWithPath: jsonPath))
        print("figures written to \(jsonPath)")
    }
}

try await runBench()
