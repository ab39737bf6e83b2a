import EventStore
import Foundation
import Logging
import Postgres

/// Runs a runner for every unit of work (each projection, or each partition of a partitioned
/// one), the lease coordinator, the head probe, the notification listener and an optional
/// health reporter as children of one task group, all on connections of one `ConnectionPool`
/// (at most `RuntimeOptions.maxConnections`, whatever the number of units), until the task running it is cancelled (or,
/// run as a `Service` in a `ServiceGroup`, until graceful shutdown: see `Worker+Service.swift`).
///
/// Instances with the same projections share the units through leases (`LeaseCoordinator`):
/// a runner works only while this instance holds its unit's lease, under its fencing token.
/// A runner handles its own failures, so one failing projection never stops the others.
/// Cancellation stops everything: a batch in flight is rolled back (its statement is
/// cancelled on the server) or has committed, never half; then the leases are released.
public struct Worker: Sendable {
    public let projections: [any Projection]
    /// The units of work: one per projection, or one per partition.
    public let units: [WorkUnit]
    /// The leases this instance holds.
    public let leases = Leases()
    public let database: ConnectionConfiguration
    public let options: RuntimeOptions
    public let board: StatusBoard
    public let broadcaster = WakeupBroadcaster()
    /// Every server connection `run` uses comes from here (borrowed per action, or dedicated).
    public let pool: ConnectionPool
    let logger: Logger

    /// - Throws: `SchemaError` for duplicate projection (or unit) names, or a projection that decrypts without a decryptor.
    public init(
        projections: [any Projection], database: ConnectionConfiguration, options: RuntimeOptions,
        pool: ConnectionPool? = nil, logger: Logger = Logger(label: "projectionist")
    ) throws {
        var seen = Set<String>()
        for projection in projections where !seen.insert(projection.name).inserted {
            throw SchemaError("two projections are named '\(projection.name)': names identify checkpoints and must be unique")
        }
        if options.decryptor == nil, let projection = projections.first(where: \.decryptsPayloads) {
            throw SchemaError(
                "projection '\(projection.name)' decrypts payloads, but no keyring is configured: set RuntimeOptions.decryptor "
                    + "(in YAML: the encryption section)")
        }
        let units = projections.flatMap(WorkUnit.units(of:))
        var unitNames = Set<String>()
        for unit in units where !unitNames.insert(unit.name).inserted {
            throw SchemaError("two units of work are named '\(unit.name)': a projection's name clashes with another one's partition")
        }
        self.projections = projections
        self.units = units
        self.database = database
        self.options = options
        self.board = StatusBoard(names: units.map(\.name))
        self.pool = pool ?? ConnectionPool(database: database, options: options, logger: logger)
        self.logger = logger
    }

    /// The start-up check, the one place it is defined: the schema (tables, columns, the events
    /// sequence), the checkpoints of partitioned projections, and the published views (which
    /// must exist with `requireViews`, as `migrate` creates them).
    /// - Throws: `SchemaError` naming what is missing and what to run; `PostgresError`.
    public func verifyStartup(requireViews: Bool = false, on connection: PostgresConnection) async throws {
        try await StartupCheck.verify(self.options.schema, allowSequenceCache: self.options.allowSequenceCache, on: connection)
        try await StartupCheck.verifyPartitions(self.projections, schema: self.options.schema, on: connection)
        try await Publications(schema: self.options.schema, projections: self.projections).verify(requireViews: requireViews, on: connection)
    }

    /// Checks the schema (`verifyStartup`), then runs until cancelled.
    /// - Parameters:
    ///   - verify: run the start-up check (false only when the caller just ran `verifyStartup`).
    ///   - ready: called once the schema is checked and every runner has started.
    /// - Throws: `SchemaError` or `PostgresError` from the start-up check; nothing after start.
    public func run(verify: Bool = true, ready: @Sendable () async -> Void = {}) async throws {
        if verify {
            try await self.pool.withConnection(priority: .control) { try await self.verifyStartup(on: $0) }
        }

        let coordinator = LeaseCoordinator(
            units: self.units.map(\.name), leases: self.leases, pool: self.pool, options: self.options, logger: self.logger)
        let (runnersStopped, markRunnersStopped) = AsyncStream.makeStream(of: Void.self)
        await withDiscardingTaskGroup { outer in
            // The coordinator outlives the runners: it releases the leases once they have stopped.
            outer.addTask { await coordinator.run(runnersStopped: runnersStopped) }
            await withDiscardingTaskGroup { group in
                if self.options.pooling == .session, let channel = self.options.schema.notifyChannel, !channel.isEmpty {
                    group.addTask { await self.listen(on: channel) }
                }
                if let interval = self.options.headPollInterval {
                    group.addTask { await self.pollHead(every: interval) }
                }
                let sharedLog = self.makeSharedLog()
                for unit in self.units {
                    let wakeup = Wakeup()
                    self.broadcaster.register(wakeup)
                    let runner = ProjectionRunner(
                        unit: unit, pool: self.pool, options: self.options, board: self.board,
                        wakeup: wakeup, leases: self.leases, logger: self.logger, sharedLog: sharedLog)
                    group.addTask { await runner.run() }
                }
                let monitor = SlowBatchMonitor(board: self.board, threshold: self.options.slowBatchWarn, logger: self.logger)
                group.addTask { await monitor.run() }
                let swaps = SwapMonitor(projections: self.projections, pool: self.pool, options: self.options, logger: self.logger)
                group.addTask { await swaps.run() }
                let lag = LagSampler(board: self.board, pool: self.pool, options: self.options, logger: self.logger)
                group.addTask { await lag.run() }
                let metrics = WorkerMetrics(board: self.board, units: self.units)
                group.addTask { await metrics.run() }
                self.logger.info(
                    "Worker started.",
                    metadata: ["projections": "\(self.projections.count)", "units": "\(self.units.count)", "instance": "\(self.options.instanceID)"])
                await ready()
            }
            markRunnersStopped.finish()
        }
        self.pool.drain()
        self.logger.info("Worker stopped.")
    }

    /// The one reader of the log for every unit, when there are several (and shared reading is
    /// on). Its reads borrow a pooled connection at control priority: one read serves every unit.
    func makeSharedLog() -> SharedLog? {
        guard self.options.sharedReading, self.units.count > 1 else { return nil }
        let chunk = self.options.sharedReadChunk ?? 4 * max(1, self.options.batchSize)
        let windowReader = WindowReader(events: self.options.schema.eventsTable, layout: self.options.schema.layout, partitioned: self.units.contains { $0.partition != nil })
        let pool = self.pool
        return SharedLog(
            capacity: self.options.sharedWindowRows ?? 8 * chunk, chunk: chunk, patience: self.options.sharedWindowPatience,
            windowReader: windowReader, logger: self.logger
        ) { after, limit in
            try await pool.withConnection(priority: .control) { try await windowReader.read(after: after, limit: limit, on: $0) }
        }
    }

    /// Probes the log's head on a borrowed connection (control priority) every `interval` and
    /// wakes every runner when it moved: one cheap query per interval stands in for every idle
    /// runner's poll. Its statement is prepared once per pooled connection.
    func pollHead(every interval: Duration) async {
        let events = self.options.schema.eventsTable.quoted
        var last: Int64 = -1
        let sql = "SELECT coalesce(max(global_position), 0) FROM \(events)"
        let prepared = self.options.pooling == .session
        let probe = PeriodicTask(
            role: "Head probe", interval: interval, pool: self.pool, priority: .control, backoff: self.options.reconnectBackoff,
            logger: self.logger)
        await probe.run { connection in
            // A no-op on a connection that has it (`PostgresConnection.preparedStatements`).
            if prepared { try await connection.prepare("projectionist_head", sql) }
            let result = prepared ? try await connection.queryPrepared("projectionist_head") : try await connection.query(sql)
            let head = try result[0].decode(Int64.self, at: 0)
            if head != last {
                if last >= 0 { self.broadcaster.signalAll() }
                last = head
            }
        }
    }

    /// LISTENs on `channel` on a dedicated connection (out of the pool for good, counted in its
    /// budget) and wakes every runner on each notification; after (re)connecting it wakes them
    /// all, since notifications may have been lost. A lost connection is replaced after
    /// `RetryLoop`'s backoff.
    func listen(on channel: String) async {
        await RetryLoop(role: "Notification listener", backoff: self.options.reconnectBackoff, logger: self.logger).run { progressed in
            let connection = try await self.pool.reserveDedicated()
            do {
                try await connection.listen(channel)
                progressed()
                self.broadcaster.signalAll()
                for try await _ in connection.notifications() { self.broadcaster.signalAll() }
            } catch {
                await self.pool.release(connection, after: error)
                throw error
            }
            await self.pool.release(connection)
        }
    }
}
