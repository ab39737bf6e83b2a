import EventStore
import Foundation
import Postgres
import ProjectionistApp
import Projections
import TestSupport

// The partition measurements: one projection caught up in 1, 2 and 4 partitions, and how long a
// unit of work goes without a holder when its daemon is killed (kill -9) or stopped (SIGTERM).

extension Bench {
    /// Partitioned catch-up, then failover and handover between two daemons.
    mutating func scale(_ admin: PostgresConnection) async throws {
        try await self.partitionedCatchUps(admin)
        try await self.takeovers(admin)
    }

    /// The YAML example's SQL projection caught up by one in-process Worker with `partitions`
    /// 1, 2 and 4, alternating for BENCH_ROUNDS rounds (medians), with the CPU each run took.
    mutating func partitionedCatchUps(_ admin: PostgresConnection) async throws {
        if self.results.events == 0 { try await self.seedLog(admin) }
        let example = try self.exampleConfiguration().projections[0]
        let orderEvents = Double(try await admin.query("SELECT count(*) FROM events WHERE aggregate_type = 'Order'")[0].decode(Int64.self, at: 0))
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3)
        let counts = [1, 2, 4]
        var runs: [Int: [CatchUpRun]] = [:]
        for round in 1...rounds {
            var line = "round \(round), partitions:"
            for partitions in counts {
                let projection = try SQLProjection(
                    name: example.name, aggregateTypes: example.aggregateTypes, onError: .stop, setup: example.setup, reset: example.reset,
                    handlers: example.handlers, partitions: partitions)
                try await admin.execute(script: "TRUNCATE order_overview_v1")
                let run = try await self.measuredCatchUp([projection], options: self.options(), admin: admin)
                self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
                runs[partitions, default: []].append(run)
                line += String(format: " %d → %.0f events/s (server %.2f cores, client %.2f)", partitions, orderEvents / run.seconds, run.serverCores, run.clientCores)
            }
            print(line)
        }
        let base = runs[1]!
        self.results.partitionedCatchUps = counts.map { partitions in
            let own = runs[partitions]!
            let postgres = own.compactMap(\.postgresCores)
            return PartitionedCatchUp(
                partitions: partitions, eventsPerSecond: median(own.map { orderEvents / $0.seconds }),
                ratio: median(zip(own, base).map { $1.seconds / $0.seconds }), serverCores: median(own.map(\.serverCores)),
                clientCores: median(own.map(\.clientCores)), machineCores: median(own.map(\.machineCores)),
                postgresCores: postgres.count == own.count ? median(postgres) : nil)
        }
        print("partitioned catch-up (median of \(rounds); server = machine busy minus this process, of \(ProcessInfo.processInfo.activeProcessorCount) cores):")
        for figure in self.results.partitionedCatchUps { print("  \(figure.text)") }
        if let one = self.results.partitionedCatchUps.first(where: { $0.partitions == 1 }) {
            print(String(
                format: "  partitions 1 left %@ (the machine was busy %.2f of %d cores; a whole idle core counts as free)",
                one.freeCore ? "a core free for a second partition" : "no core free for a second partition", one.machineCores,
                ProcessInfo.processInfo.activeProcessorCount))
        }
    }

    /// Two daemons on one small projection (one unit) with `worker.lease_ttl: 2s`: the one
    /// holding the unit is killed (kill -9), then stopped (SIGTERM), BENCH_FAILOVERS times each
    /// (10); each time, the time until the other holds a valid lease, and a new daemon is
    /// started in place of the old.
    mutating func takeovers(_ admin: PostgresConnection) async throws {
        guard let binary = self.daemonBinary else {
            print("failover: skipped (PROJECTIONIST_BIN not set)")
            return
        }
        let count = max(1, Int(ProcessInfo.processInfo.environment["BENCH_FAILOVERS"] ?? "") ?? 10)
        let ttl = 2.0
        self.results.failoverLeaseTTL = ttl
        try await self.freshSchema(admin)
        _ = try await Seeder.seedOrders(200, on: admin)
        let example = try String(contentsOf: self.repository.appendingPathComponent("systemd/projectionist.yaml"), encoding: .utf8)
        let projection = String(example[example.range(of: "  - name: order_overview_v1")!.lowerBound...])
        let yaml = "worker:\n  poll_interval: 100ms\n  max_poll_interval: 1s\n  lease_ttl: \(Int(ttl))s\nmetrics:\n  listen: \"\"\nprojections:\n" + projection
        let daemons = try await Daemons(binary: binary, configuration: yaml, database: self.connectionString)
        defer { daemons.killAll() }
        for _ in 0..<2 { try daemons.start() }
        print("failover and handover: two daemons, the example SQL projection (one unit), worker.lease_ttl: \(Int(ttl))s (a lease tick every \(Int(ttl * 200)) ms)")

        var failovers: [Double] = [], pastExpiry: [Double] = []
        for round in 1...count {
            let takeover = try await self.takeover(signal: SIGKILL, daemons, admin, ttl: ttl)
            failovers.append(takeover.milliseconds)
            if let past = takeover.pastExpiryMilliseconds { pastExpiry.append(past) }
            print(String(
                format: "  kill -9 %d: pid %d → %d in %.0f ms (the lease had %.0f ms left; claimed %.0f ms after it ran out)", round,
                takeover.from, takeover.to, takeover.milliseconds, takeover.leaseLeftMilliseconds ?? .nan, takeover.pastExpiryMilliseconds ?? .nan))
        }
        var handovers: [Double] = []
        for round in 1...count {
            let takeover = try await self.takeover(signal: SIGTERM, daemons, admin, ttl: ttl)
            handovers.append(takeover.milliseconds)
            print(String(format: "  SIGTERM %d: pid %d → %d in %.0f ms", round, takeover.from, takeover.to, takeover.milliseconds))
        }
        self.results.failover = Percentiles(milliseconds: failovers)
        self.results.failoverPastExpiry = pastExpiry.isEmpty ? nil : Percentiles(milliseconds: pastExpiry)
        self.results.handover = Percentiles(milliseconds: handovers)
        print("failover after kill -9 (lease_ttl \(Int(ttl)) s): \(self.results.failover!.text(of: "failovers"))")
        if let past = self.results.failoverPastExpiry { print("  of which after the lease ran out: \(past.text(of: "failovers"))") }
        print("handover after SIGTERM: \(self.results.handover!.text(of: "handovers"))")
        await daemons.stopAll()
    }

    /// One takeover: waits until both daemons are live and one has held `order_overview_v1` for
    /// a while, sends it `signal`, times (every 10 ms) until the other holds a valid lease, then
    /// starts a daemon in place of the signalled one.
    func takeover(signal: Int32, _ daemons: Daemons, _ admin: PostgresConnection, ttl: Double) async throws -> Takeover {
        let unit = "order_overview_v1"
        let (owner, survivor) = try await self.settledOwner(of: unit, daemons, admin, ttl: ttl)
        // Settling ends at a fixed phase of the holders' lease ticks (1.5 s after a claim): a random
        // wait of up to one tick samples the phases evenly, as a real crash would.
        try await Task.sleep(for: .milliseconds(Int.random(in: 0..<Int(ttl * 200))))
        let signalledAt = try await admin.query("SELECT extract(epoch FROM clock_timestamp())::float8")[0].decode(Double.self, at: 0)
        let start = self.clock.now
        owner.signal(signal)
        var ownerExpiry: Double?  // the old lease's last expiry (a renewal in flight may still land)
        var claimed: Holding?
        let found = try await poll(timeout: .seconds(60), every: .milliseconds(10)) {
            let holding = try await Self.holding(unit, admin)
            if holding.pid == owner.pid, let expires = holding.expires { ownerExpiry = expires }
            guard holding.pid == survivor.pid, holding.valid else { return false }
            claimed = holding
            return true
        }
        let milliseconds = (self.clock.now - start).seconds * 1000
        guard found, let claimed else {
            let state = try await Self.holding(unit, admin)
            throw BenchError(
                "pid \(survivor.pid) did not take \(unit) over within 60 s of signal \(signal) to pid \(owner.pid): held by pid \(state.pid.map(String.init) ?? "none"), valid \(state.valid)\n\(survivor.stderr.suffix(2000))")
        }
        let output = await owner.finish()
        if signal == SIGTERM && output.status != 0 {
            print("  pid \(owner.pid) exited with \(output.status) after SIGTERM: \(output.stderr.suffix(1000))")
        }
        try daemons.start()
        return Takeover(
            from: owner.pid, to: survivor.pid, milliseconds: milliseconds,
            leaseLeftMilliseconds: ownerExpiry.map { ($0 - signalledAt) * 1000 },
            // A claim sets the lease to now() + ttl: its expiry minus ttl is when it was claimed.
            pastExpiryMilliseconds: ownerExpiry.flatMap { old in claimed.expires.map { ($0 - ttl - old) * 1000 } })
    }

    /// Waits until both running daemons heartbeat and one of them has held `unit` for 1.5 s
    /// (a newly started daemon may take the unit over to even out the shares).
    func settledOwner(of unit: String, _ daemons: Daemons, _ admin: PostgresConnection, ttl: Double) async throws
        -> (owner: RunningProcess, survivor: RunningProcess)
    {
        let running = daemons.running
        guard running.count == 2 else { throw BenchError("\(running.count) daemons running instead of 2") }
        var owner: Int32?
        var since = self.clock.now
        try await eventually("both daemons live and one holding \(unit) for 1.5 s", timeout: .seconds(60), every: .milliseconds(10)) {
            if let gone = running.first(where: { !$0.process.isRunning }) {
                throw BenchError("daemon \(gone.pid) exited: \(gone.stderr.suffix(2000))")
            }
            let live = try await admin.query(
                "SELECT pid::bigint FROM worker_nodes WHERE heartbeat_at > now() - make_interval(secs => $1)", [ttl]
            ).map { Int32(try $0.decode(Int64.self, at: 0)) }
            let holding = try await Self.holding(unit, admin)
            guard running.allSatisfy({ live.contains($0.pid) }), holding.valid, let holder = holding.pid,
                running.contains(where: { $0.pid == holder })
            else {
                owner = nil
                return false
            }
            if holder != owner {
                owner = holder
                since = self.clock.now
            }
            return self.clock.now - since >= .milliseconds(1500)
        }
        return (running.first { $0.pid == owner }!, running.first { $0.pid != owner }!)
    }

    /// Who holds `unit` (by pid), until when (epoch seconds, server clock), and whether the lease is valid now.
    static func holding(_ unit: String, _ admin: PostgresConnection) async throws -> Holding {
        let rows = try await admin.query(
            """
            SELECT n.pid::bigint, extract(epoch FROM a.lease_expires_at)::float8, coalesce(a.lease_expires_at > now(), false)
            FROM consumer_assignments a LEFT JOIN worker_nodes n ON n.worker_id = a.worker_id WHERE a.consumer_name = $1
            """, [unit])
        for row in rows {
            return Holding(
                pid: try row.decode(Int64?.self, at: 0).map { Int32($0) }, expires: try row.decode(Double?.self, at: 1),
                valid: try row.decode(Bool.self, at: 2))
        }
        return Holding(pid: nil, expires: nil, valid: false)
    }
}

struct Holding {
    var pid: Int32?
    var expires: Double?
    var valid: Bool
}

/// One kill -9 or SIGTERM and the takeover after it.
struct Takeover {
    var from: Int32
    var to: Int32
    var milliseconds: Double
    /// How long the signalled daemon's lease still ran (server clock); nil if it had gone.
    var leaseLeftMilliseconds: Double?
    /// From the old lease's expiry to the new holder's claim (server clock).
    var pastExpiryMilliseconds: Double?
}

/// One catch-up's wall time and CPU seconds.
struct CatchUpRun {
    var seconds: Double
    var clientCPU: Double
    var machineCPU: Double
    /// The PostgreSQL cluster's own processes, when it runs on this machine.
    var postgresCPU: Double?

    /// The server's CPU as the machine's busy CPU minus this process's (so it includes anything
    /// else running on the machine), in cores on average.
    var serverCores: Double { (self.machineCPU - self.clientCPU) / self.seconds }
    var clientCores: Double { self.clientCPU / self.seconds }
    var machineCores: Double { self.machineCPU / self.seconds }
    var postgresCores: Double? { self.postgresCPU.map { $0 / self.seconds } }
}

/// One partition count's catch-up figures (medians over the rounds).
struct PartitionedCatchUp: Codable {
    var partitions: Int
    var eventsPerSecond: Double
    /// Median over the rounds of partitions 1's time over this one's (same round).
    var ratio: Double
    /// Machine busy minus this process, in cores.
    var serverCores: Double
    var clientCores: Double
    var machineCores: Double
    /// PostgreSQL's processes alone (nil when the server is not on this machine).
    var postgresCores: Double?

    /// A whole core sat idle during this run (machine busy ≤ cores − 1): room for a second
    /// partition's backend. Judged on partitions 1's run.
    var freeCore: Bool { self.machineCores <= Double(ProcessInfo.processInfo.activeProcessorCount) - 1 }

    var text: String {
        var text = String(
            format: "partitions %d: %.0f events/s (%.2f× partitions 1); server %.2f cores, client %.2f, machine busy %.2f", self.partitions,
            self.eventsPerSecond, self.ratio, self.serverCores, self.clientCores, self.machineCores)
        if let postgres = self.postgresCores { text += String(format: " (PostgreSQL's processes %.2f)", postgres) }
        return text
    }
}

extension Percentiles {
    /// From samples in milliseconds (p99 interpolated as percentile_cont does).
    init(milliseconds samples: [Double]) {
        let sorted = samples.sorted()
        func percentile(_ fraction: Double) -> Double {
            guard sorted.count > 1 else { return sorted.first ?? 0 }
            let rank = fraction * Double(sorted.count - 1)
            let low = Int(rank.rounded(.down))
            let high = min(low + 1, sorted.count - 1)
            return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
        }
        self.init(p50: percentile(0.5), p99: percentile(0.99), max: sorted.last ?? 0, count: Int64(sorted.count))
    }

    func text(of what: String) -> String { String(format: "p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d %@)", self.p50, self.p99, self.max, self.count, what) }
}

extension BenchResults {
    /// The rows of the partition measurements, when they ran.
    var scaleRows: [(String, String, String, String)] {
        var rows: [(String, String, String, String)] = []
        for figure in self.partitionedCatchUps {
            var text = String(
                format: "%.0f events/s (%.2f×); server %.2f cores, client %.2f, machine %.2f", figure.eventsPerSecond, figure.ratio,
                figure.serverCores, figure.clientCores, figure.machineCores)
            if let postgres = figure.postgresCores { text += String(format: " (PostgreSQL %.2f)", postgres) }
            switch figure.partitions {
            case 1: rows.append(("catch-up, SQL projection, partitions 1", text, "", ""))
            case 2:
                let free = self.partitionedCatchUps.first { $0.partitions == 1 }?.freeCore ?? false
                let met = free ? (figure.ratio >= 1.5 ? "met" : "MISSED") : "n/a (no free core)"
                let target = "≥ 1.5× partitions 1 where a core is free (partitions 1 left one idle: \(free ? "yes" : "no"))"
                rows.append(("  partitions 2", text, target, met))
            default: rows.append(("  partitions \(figure.partitions)", text, "", ""))
            }
        }
        if let failover = self.failover {
            let limit = (self.failoverLeaseTTL + 1) * 1000
            rows.append((
                "failover after kill -9, lease_ttl \(Int(self.failoverLeaseTTL)) s", failover.text(of: "failovers"),
                "p99 ≤ lease_ttl + 1 s", failover.p99 <= limit ? "met" : "MISSED"
            ))
        }
        if let past = self.failoverPastExpiry {
            rows.append(("  of which after the lease ran out", past.text(of: "failovers"), "≤ one lease tick (\(Int(self.failoverLeaseTTL * 200)) ms)", ""))
        }
        if let handover = self.handover {
            rows.append(("handover after SIGTERM", handover.text(of: "handovers"), "p99 ≤ 1 s", handover.p99 <= 1000 ? "met" : "MISSED"))
        }
        return rows
    }
}

/// Daemons (`projectionist run`) on one configuration, written and migrated on creation.
/// `killAll()` (SIGKILL by pid) ends whatever still runs: call it on every way out (`defer`).
/// Each pid is also appended to the file BENCH_DAEMON_PIDS names, if any, for scripts/bench to
/// kill should the benchmark itself die.
final class Daemons: @unchecked Sendable {
    let executable: URL
    let config: String
    let environment: [String: String?]
    private(set) var processes: [RunningProcess] = []

    init(binary: String, configuration yaml: String, database: String) async throws {
        self.executable = URL(fileURLWithPath: binary)
        self.config = TemporaryFile.write(yaml)
        self.environment = ["PROJECTIONIST_DATABASE_URL": database, "NOTIFY_SOCKET": nil]
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", self.config], environment: self.environment, executable: self.executable)
        guard migrate.status == 0 else { throw BenchError("migrate failed with \(migrate.status): \(migrate.stderr)") }
    }

    @discardableResult
    func start() throws -> RunningProcess {
        let process = try ProjectionistProcess.start(["run", "--config", self.config], environment: self.environment, executable: self.executable)
        self.processes.append(process)
        if let path = ProcessInfo.processInfo.environment["BENCH_DAEMON_PIDS"], let file = FileHandle(forWritingAtPath: path) {
            file.seekToEndOfFile()
            file.write(Data("\(process.pid)\n".utf8))
            file.closeFile()
        }
        return process
    }

    var running: [RunningProcess] { self.processes.filter { $0.process.isRunning } }

    func killAll() {
        for process in self.processes where process.process.isRunning { kill(process.pid, SIGKILL) }
    }

    /// Kills every one and waits until each has exited.
    func stopAll() async {
        self.killAll()
        for process in self.processes { _ = await process.finish() }
    }

    deinit {
        self.killAll()
        TemporaryFile.remove(self.config)
    }
}

/// The postmaster of the backend `backend`, if it runs on this machine.
func postmasterPID(backend: Int32) -> Int32? {
    guard let fields = procStat(backend), fields.count > 1, let parent = Int32(fields[1]), procStat(parent) != nil else { return nil }
    return parent
}

/// CPU seconds of the PostgreSQL cluster so far: the postmaster's own and its ended children's
/// (which it has reaped), plus its running children's.
func serverCPUSeconds(postmaster: Int32) -> Double? {
    guard let own = procStat(postmaster), own.count > 14 else { return nil }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = own[11...14].compactMap(Double.init).reduce(0, +)
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), let fields = procStat(pid), fields.count > 12, fields[1] == "\(postmaster)" else { continue }
        total += fields[11...12].compactMap(Double.init).reduce(0, +)
    }
    return total / ticks
}

/// The fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [11] utime,
/// [12] stime, [13] cutime, [14] cstime (clock ticks).
func procStat(_ pid: Int32) -> [String]? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").map(String.init)
}
