import EventStore
import Foundation
import Postgres
import Projections
import TestSupport

// The rebuild measurement: a successor (`replaces`) rebuilt from 0 beside the live version while
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
}
