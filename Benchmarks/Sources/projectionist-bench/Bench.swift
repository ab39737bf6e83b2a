import EventStore
import Foundation
import Logging
import Postgres
import ProjectionistApp
import Projections
import Synchronization
import TestSupport

/// One benchmark run: every measurement on one throwaway database.
struct Bench {
    let database: ConnectionConfiguration
    let connectionString: String
    let orders: Int
    let liveSeconds: Int
    let daemonBinary: String?
    let repository: URL
    let clock = ContinuousClock()
    var results = BenchResults()

    /// How long any wait of the benchmark may take before it gives up.
    static let patience = Duration.seconds(600)

    var logger: Logger {
        var logger = Logger(label: "bench")
        logger.logLevel = ProcessInfo.processInfo.environment["BENCH_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        return logger
    }

    // MARK: - Setup

    /// Drops everything and migrates afresh (with or without the notify trigger).
    func freshSchema(_ admin: PostgresConnection, notifyTrigger: Bool = true) async throws {
        try await admin.execute(script: """
            DROP VIEW IF EXISTS order_overview;
            DROP TABLE IF EXISTS events, aggregate_heads, consumer_checkpoints, consumer_gap_skips, consumer_dead_letters,
                worker_nodes, consumer_assignments, order_overview_v1, order_overview_v2, order_overview_plain, refund_overview,
                latency_probe CASCADE;
            DROP FUNCTION IF EXISTS events_notify() CASCADE;
            """)
        var schema = Schema()
        schema.notifyTrigger = notifyTrigger
        try await admin.execute(script: Migration.sql(for: schema))
        try await admin.execute(script: OrderWorkload.readModelSQL)
        try await admin.execute(script: OrderWorkload.readModelSQL.replacingOccurrences(of: "order_overview_v1", with: "refund_overview"))
        try await admin.execute(script: "CREATE TABLE latency_probe (position bigint NOT NULL)")
    }

    /// The repository's example configuration (the SQL order_overview_v1).
    func exampleConfiguration() throws -> ProjectionistConfiguration {
        try ProjectionistConfiguration.load(path: self.repository.appendingPathComponent("systemd/projectionist.yaml").path, environment: [:])
    }

    func options(_ change: (inout RuntimeOptions) -> Void = { _ in }) -> RuntimeOptions {
        var options = RuntimeOptions()
        options.pollInterval = .milliseconds(100)
        options.maxPollInterval = .seconds(1)
        if let size = ProcessInfo.processInfo.environment["BENCH_BATCH_SIZE"].flatMap(Int.init) { options.batchSize = size }
        change(&options)
        return options
    }

    /// Runs `projections` from checkpoint 0 until every one reaches the head. - Returns: seconds.
    func catchUp(_ projections: [any Projection], options: RuntimeOptions, admin: PostgresConnection) async throws -> Double {
        try await self.measuredCatchUp(projections, options: options, admin: admin).seconds
    }

    /// `catchUp` with the CPU it took: this process's, the whole machine's and PostgreSQL's.
    func measuredCatchUp(_ projections: [any Projection], options: RuntimeOptions, admin: PostgresConnection) async throws -> CatchUpRun {
        // Every checkpoint of each projection, under any partition layout (`name`, `name#k/N`).
        var units = projections.map(\.name)
        for projection in projections {
            units += try await PartitionLayout.rows(of: projection.name, schema: options.schema, on: admin).map(\.unit)
        }
        try await CheckpointStore().remove(units, on: admin)
        let head = try await EventStore().latestPosition(on: admin)
        let postmaster = postmasterPID(backend: await admin.backendPID)
        let start = self.clock.now
        let cpuStart = processCPUSeconds()
        let machineStart = machineBusyCPUSeconds()
        let serverStart = postmaster.flatMap(serverCPUSeconds(postmaster:))
        let running = try RunningWorker(database: self.database, projections: projections, options: options, logger: self.logger)
        // A worker that fails (e.g. its start-up check) ends the wait with its error.
        let failure = Failure(watching: running.task)
        try await eventually("every projection reaches the head", timeout: Self.patience, every: .milliseconds(2)) {
            if let error = failure.value { throw error }
            return running.worker.board.all.allSatisfy { $0.position >= head }
        }
        let elapsed = self.clock.now - start
        var run = CatchUpRun(
            seconds: elapsed.seconds, clientCPU: processCPUSeconds() - cpuStart, machineCPU: machineBusyCPUSeconds() - machineStart)
        if let serverStart, let serverEnd = postmaster.flatMap(serverCPUSeconds(postmaster:)) { run.postgresCPU = serverEnd - serverStart }
        if ProcessInfo.processInfo.environment["BENCH_CPU"] != nil {
            print(String(
                format: "  CPU over %.2f s: client %.2f s, whole machine %.2f s busy (client and PostgreSQL)",
                run.seconds, run.clientCPU, run.machineCPU))
        }
        try await running.finish()
        return run
    }

    /// The error a task ended with, once it has.
    final class Failure: Sendable {
        private let error = Mutex<(any Error)?>(nil)
        init(watching task: Task<Void, any Error>) {
            Task { if case .failure(let error) = await task.result { self.error.withLock { $0 = error } } }
        }
        var value: (any Error)? { self.error.withLock { $0 } }
    }

    /// A fresh schema and the order log (`orders` orders, every 20th aggregate a `Refund`).
    mutating func seedLog(_ admin: PostgresConnection) async throws {
        try await self.freshSchema(admin)
        let start = self.clock.now
        let total = try await Seeder.seedOrders(self.orders, otherType: "Refund", otherEvery: 20, on: admin)
        try await admin.execute(script: "VACUUM ANALYZE events")
        self.results.events = total
        let refunds = try await admin.query("SELECT count(*) FROM events WHERE aggregate_type = 'Refund'")[0].decode(Int64.self, at: 0)
        print("seeded \(total) events (\(refunds) of them Refund) in \(format(self.clock.now - start))")
    }

    // MARK: - Measurements

    /// Events/s of `projection`'s statements sent straight through the Postgres module:
    /// prepared, pipelined, 1,000 per transaction, no runtime.
    func ceiling(of projection: some StatementProjection, _ events: [PersistedEvent], admin: PostgresConnection) async throws -> Double {
        try await admin.execute(script: "TRUNCATE order_overview_v1")
        try await projection.prepare(admin)
        let statements = try events.map { try projection.statements(for: $0) }
        let start = self.clock.now
        for chunk in stride(from: 0, to: statements.count, by: 1000) {
            try await admin.transaction { tx in
                var pipeline = Pipeline()
                for list in statements[chunk..<min(chunk + 1000, statements.count)] {
                    for statement in list { pipeline.append(statement) }
                }
                try await tx.execute(pipeline, discardingResults: true)
            }
        }
        return Double(events.count) / (self.clock.now - start).seconds
    }

    /// Ceiling and catch-up (SQL projection, Swift projection), plus the scoped catch-up.
    mutating func throughput(_ admin: PostgresConnection) async throws {
        try await self.seedLog(admin)
        let total = self.results.events

        // Ceiling: the same statements straight through the Postgres module, pipelined, 1,000 per transaction.
        let overview = OrderOverviewProjection()
        let orderEvents = try await EventStore().readEvents(after: 0, limit: Int(total), on: admin).filter { $0.aggregateType == "Order" }
        // Each projection's own statements, prepared once, parameters encoded beforehand: only the
        // server's work (and the round trips of 1,000-statement pipelines) is timed.
        let sql = try self.exampleConfiguration().sqlProjections()[0]
        // Ceilings and catch-ups alternate for BENCH_ROUNDS rounds (default 3) and each figure is
        // the median of its rounds: the server's speed drifts on a shared machine, and a ratio of
        // two single measurements taken a minute apart drifts with it.
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3)
        var ceilings: [Double] = [], ceilingsSQL: [Double] = [], catchUpsSQL: [Double] = [], catchUpsSwift: [Double] = []
        var catchUpsSwiftOneAtATime: [Double] = []
        for round in 1...rounds {
            ceilings.append(try await self.ceiling(of: overview, orderEvents, admin: admin))
            ceilingsSQL.append(try await self.ceiling(of: sql, orderEvents, admin: admin))
            // Catch-up as the SQL projection from the YAML example, then as the Swift projection.
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            catchUpsSQL.append(Double(orderEvents.count) / (try await self.catchUp([sql], options: self.options(), admin: admin)))
            self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            catchUpsSwift.append(Double(orderEvents.count) / (try await self.catchUp([overview], options: self.options(), admin: admin)))
            self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
            // The same without pipelines in flight (each batch's results read before the next is sent).
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            let oneAtATime = self.options { $0.pipelinesInFlight = false }
            catchUpsSwiftOneAtATime.append(Double(orderEvents.count) / (try await self.catchUp([overview], options: oneAtATime, admin: admin)))
            self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
            print(String(
                format: "round %d: ceilings %.0f (Swift) / %.0f (SQL) events/s; catch-up SQL %.0f (%.0f %%), Swift %.0f (%.0f %%)",
                round, ceilings[round - 1], ceilingsSQL[round - 1], catchUpsSQL[round - 1], 100 * catchUpsSQL[round - 1] / ceilingsSQL[round - 1],
                catchUpsSwift[round - 1], 100 * catchUpsSwift[round - 1] / ceilings[round - 1]))
            print(String(
                format: "  Swift without pipelines in flight: %.0f (%.0f %%)",
                catchUpsSwiftOneAtATime[round - 1], 100 * catchUpsSwiftOneAtATime[round - 1] / ceilings[round - 1]))
        }
        self.results.ceiling = median(ceilings)
        self.results.ceilingSQL = median(ceilingsSQL)
        self.results.catchUpSQL = median(catchUpsSQL)
        self.results.catchUpSwift = median(catchUpsSwift)
        self.results.catchUpSwiftOneAtATime = median(catchUpsSwiftOneAtATime)
        print("ceiling (median of \(rounds)): \(Int(self.results.ceiling)) events/s with the Swift projection's statements, \(Int(self.results.ceilingSQL)) with the SQL projection's")
        print("catch-up (median of \(rounds)): SQL projection \(Int(self.results.catchUpSQL)) events/s, Swift projection \(Int(self.results.catchUpSwift)) events/s")

        // Scoped: the same SQL over the Refund type (5 % of the log); events/s counts the log it covers.
        let refundsProjection = try SQLProjection(
            name: "refund_overview", aggregateTypes: ["Refund"], onError: .stop, setup: nil, reset: nil,
            handlers: try self.exampleConfiguration().projections[0].handlers.map { handler in
                (handler.eventType, handler.statements.map { $0.replacingOccurrences(of: "order_overview_v1", with: "refund_overview") })
            })
        let scopedSeconds = try await self.catchUp([refundsProjection], options: self.options(), admin: admin)
        self.results.scopedCatchUp = Double(total) / scopedSeconds
        let refundRows = try await admin.query("SELECT count(*) FROM refund_overview")[0].decode(Int64.self, at: 0)
        print("scoped catch-up (Refund, \(refundRows) aggregates): \(Int(self.results.scopedCatchUp)) log events/s")
    }

    /// Latency from an append's commit to the read model's commit, from commit timestamps
    /// (track_commit_timestamp): 4 writers at a steady total rate for `liveSeconds`.
    mutating func liveLatency(_ admin: PostgresConnection, notify: Bool) async throws -> Percentiles {
        try await self.freshSchema(admin, notifyTrigger: notify)
        let probe = try SQLProjection(
            name: "latency_probe", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [("Tick", ["INSERT INTO latency_probe (position) VALUES ($global_position)"])])
        let options = self.options { options in
            if notify {
                options.headPollInterval = nil  // NOTIFY alone
            } else {
                options.schema.notifyChannel = nil  // the shared head probe alone
            }
        }
        let running = try RunningWorker(database: self.database, projections: [probe], options: options, logger: self.logger)
        try await eventually("the probe projection is idle", timeout: Self.patience) { running.status("latency_probe")?.state == .idle }
        let seconds = self.liveSeconds
        let database = self.database
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    let connection = try await PostgresConnection.connect(database)
                    let clock = ContinuousClock()
                    let start = clock.now
                    let interval = Duration.milliseconds(4)  // 250 events/s per writer, 1,000/s in total
                    for tick in 0..<(seconds * 250) {
                        try await clock.sleep(until: start + interval * tick)
                        let event = Event(aggregateType: "Clock", aggregateID: "writer-\(writer)", eventType: "Tick", payload: Array("{}".utf8))
                        try await EventStore().appendInOwnTransaction([event], expected: .any, on: connection)
                    }
                }
            }
            try await group.waitForAll()
        }
        let head = try await EventStore().latestPosition(on: admin)
        try await eventually("the probe reaches the head", timeout: Self.patience) { (running.status("latency_probe")?.position ?? 0) >= head }
        try await running.finish()
        return try await Percentiles.commitDelays(on: admin)
    }

    /// Append throughput of 4 writers (single-event appends, as fast as they go) for 5 s.
    func writerThroughput(_ admin: PostgresConnection, trigger: Bool) async throws -> Double {
        try await self.freshSchema(admin, notifyTrigger: trigger)
        let database = self.database
        let clock = self.clock
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    let connection = try await PostgresConnection.connect(database)
                    let deadline = clock.now + .seconds(5)
                    var count = 0
                    while clock.now < deadline {
                        let event = Event(aggregateType: "Order", aggregateID: "w\(writer)-\(count)", eventType: "OrderPlaced",
                                          payload: Array(#"{"customer_id": "c", "currency": "EUR"}"#.utf8))
                        try await EventStore().appendInOwnTransaction([event], expected: .noStream, on: connection)
                        count += 1
                    }
                    return count
                }
            }
            var total = 0
            for try await count in group { total += count }
            return total
        }
        return Double(counts) / 5
    }

    /// 100 rolled-back appends, each followed by a committed one: delay until the committed
    /// event is in the read model (commit timestamp to commit timestamp).
    mutating func rollbackStall(_ admin: PostgresConnection) async throws -> Percentiles {
        try await self.freshSchema(admin)
        let probe = try SQLProjection(
            name: "latency_probe", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [("Kept", ["INSERT INTO latency_probe (position) VALUES ($global_position)"])])
        let running = try RunningWorker(database: self.database, projections: [probe], options: self.options(), logger: self.logger)
        try await eventually("the probe projection is idle", timeout: Self.patience) { running.status("latency_probe")?.state == .idle }
        let writer = try await PostgresConnection.connect(self.database)
        let store = EventStore()
        for round in 0..<100 {
            try await store.appendInOwnTransaction(
                [Event(aggregateType: "Order", aggregateID: "gone-\(round)", eventType: "Gone", payload: [0x7b, 0x7d])],
                expected: .noStream, rollback: true, on: writer)
            let kept = try await store.appendInOwnTransaction(
                [Event(aggregateType: "Order", aggregateID: "kept-\(round)", eventType: "Kept", payload: [0x7b, 0x7d])],
                expected: .noStream, on: writer)
            try await eventually("the kept event is applied", timeout: Self.patience, every: .milliseconds(1)) {
                (running.status("latency_probe")?.position ?? 0) >= kept[0]
            }
        }
        try await running.finish()
        let audited = try await admin.query("SELECT count(*) FROM consumer_gap_skips WHERE reason = 'aborted'")[0].decode(Int64.self, at: 0)
        self.results.rollbackAudited = audited
        return try await Percentiles.commitDelays(on: admin)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
