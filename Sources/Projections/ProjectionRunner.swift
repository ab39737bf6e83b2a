import EventStore
import Foundation
import Logging
import Postgres

/// Keeps one projection up to date on a connection of its own, until its task is cancelled.
///
/// Each batch is one transaction: lock the checkpoint row, read the next positions (payloads
/// only for events in scope), apply the contiguous prefix, move the checkpoint, audit dead gaps,
/// commit. A crash anywhere re-runs at most the uncommitted batch. The runner handles its own
/// failures: transient errors reconnect with jittered backoff, handler errors are isolated to
/// the failing event and follow the projection's `onError`. It never throws.
public struct ProjectionRunner: Sendable {
    public let projection: any Projection
    let database: ConnectionConfiguration
    let options: RuntimeOptions
    let board: StatusBoard
    let wakeup: Wakeup
    let logger: Logger
    let checkpoints: CheckpointStore
    let resolver: GapResolver

    public init(
        projection: any Projection, database: ConnectionConfiguration, options: RuntimeOptions, board: StatusBoard,
        wakeup: Wakeup, logger: Logger
    ) {
        self.projection = projection
        self.database = database
        self.options = options
        self.board = board
        self.wakeup = wakeup
        var logger = logger
        logger[metadataKey: "projection"] = "\(projection.name)"
        self.logger = logger
        self.checkpoints = CheckpointStore(schema: options.schema)
        self.resolver = GapResolver(events: options.schema.eventsTable)
    }

    var name: String { self.projection.name }

    /// What one batch transaction found.
    enum Outcome {
        /// The checkpoint moved, or a full batch was read: read again at once.
        case progressed
        /// Nothing new is visible.
        case idle
        /// Stopped before missing positions whose fate is unknown.
        case blocked([ClosedRange<Int64>])
    }

    /// A handler failed inside a batch; the batch was rolled back.
    struct BatchFailure: Error {
        var events: [PersistedEvent]
        var checkpoint: Int64
        var frontier: Frontier
        var highestVisible: Int64
        var error: HandlerError
    }

    /// Mutable state of one run, owned by the run's task.
    struct Session {
        var connection: PostgresConnection?
        var dead = DeadPositions()
        var lastPersisted = ContinuousClock.now - .seconds(3600)
        /// Positions the next scoped read scans (adapts to the scope's share of the log).
        var scan: Int?
        /// The second connection that reads ahead during catch-up, and what it read.
        var reader: PostgresConnection?
        var readAhead: Batch?
        var catchingUp = false
        /// After a failure in a multi-batch transaction: one batch per transaction up to here.
        var singleBatchUntil: Int64?
    }

    // MARK: - The loop

    /// Runs until the task is cancelled; then records the state `stopped`.
    public func run() async {
        var session = Session()
        var reconnectDelay = self.options.reconnectDelay
        var pollDelay = self.options.pollInterval
        self.board.update(self.name) { $0.state = .catchingUp }
        while !Task.isCancelled {
            do {
                let connection = try await self.connected(&session)
                guard try await self.owns(connection) else {
                    self.board.update(self.name) { $0.state = .standby }
                    _ = await self.pause(for: min(self.options.pollInterval, .seconds(1)))
                    continue
                }
                let outcome = try await self.step(connection, &session)
                reconnectDelay = self.options.reconnectDelay
                switch outcome {
                case .progressed:
                    pollDelay = self.options.pollInterval
                case .idle:
                    let woke = try await self.idle(connection, &session, for: pollDelay)
                    pollDelay = woke ? self.options.pollInterval : min(pollDelay * 2, self.options.maxPollInterval)
                case .blocked(let unresolved):
                    try await self.resolve(unresolved, connection, &session)
                    pollDelay = self.options.pollInterval
                }
            } catch let failure as BatchFailure {
                session.singleBatchUntil = failure.events.last?.globalPosition
                do {
                    try await self.isolate(failure, &session)
                } catch {
                    reconnectDelay = await self.recover(from: error, &session, delay: reconnectDelay)
                }
            } catch {
                reconnectDelay = await self.recover(from: error, &session, delay: reconnectDelay)
            }
        }
        await self.stop(&session)
    }

    /// After an error outside a handler: transient ones reconnect with jittered backoff,
    /// permanent ones mark the projection failed and retry after the longest delay.
    /// - Returns: the next reconnect delay.
    private func recover(from error: any Error, _ session: inout Session, delay: Duration) async -> Duration {
        guard !Task.isCancelled else { return delay }
        let postgres = (error as? PostgresError) ?? (error as? BatchFailure)?.error.postgres
        let transient = postgres?.isTransient ?? false
        let connected = await session.connection?.isConnected ?? false
        if postgres?.isConnectionLost ?? false || !connected {
            await session.connection?.close()
            session.connection = nil
        }
        // The read-ahead may be stale or its connection broken: start both afresh.
        await session.reader?.close()
        session.reader = nil
        session.readAhead = nil
        session.catchingUp = false
        let wait = transient ? delay : self.options.maxReconnectDelay
        let message = "\(error)"
        self.board.update(self.name) { status in
            if !transient { status.state = .failed }
            status.lastError = message
        }
        if transient {
            self.logger.warning("Transient database error; retrying.", metadata: ["error": "\(message)", "retry.in": "\(wait)"])
        } else {
            self.logger.error("Projection failed; retrying later.", metadata: ["error": "\(message)", "retry.in": "\(wait)"])
            if let connection = session.connection {
                try? await self.checkpoints.recordState(self.name, status: self.status, on: connection)
            }
        }
        // Jitter (50–100 %) keeps many runners from reconnecting in lockstep.
        let jittered = wait * Double.random(in: 0.5...1.0)
        _ = await self.pause(for: jittered)
        return min(delay * 2, self.options.maxReconnectDelay)
    }

    /// Waits up to `duration` for a wake-up, beating at least every `beatInterval` meanwhile.
    /// - Returns: true when woken.
    private func pause(for duration: Duration) async -> Bool {
        let deadline = ContinuousClock.now + duration
        while !Task.isCancelled {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return false }
            if await self.wakeup.wait(timeout: min(remaining, self.options.beatInterval)) { return true }
            self.board.update(self.name) { _ in }
        }
        return false
    }

    var status: ProjectionStatus { self.board.status(self.name) ?? ProjectionStatus(name: self.name) }

    private func stop(_ session: inout Session) async {
        self.board.update(self.name) { $0.state = .stopped }
        if let reader = session.reader {
            session.reader = nil
            await Task { await reader.close() }.value
        }
        guard let connection = session.connection else { return }
        let status = self.status
        let checkpoints = self.checkpoints
        let name = self.name
        // The run's task is cancelled, which would refuse the statement: record the final state
        // from a task that is not (and wait for it, so the row is written before we return).
        await Task {
            try? await checkpoints.recordState(name, status: status, on: connection)
            await connection.close()
        }.value
        session.connection = nil
    }

    // MARK: - Connection and ownership

    private func connected(_ session: inout Session) async throws -> PostgresConnection {
        if let connection = session.connection { return connection }
        let connection = try await PostgresConnection.connect(self.database)
        try await self.checkpoints.ensureRow(self.name, on: connection)
        try await self.projection.prepare(connection)
        session.connection = connection
        let pid = await connection.backendPID
        self.logger.debug("Connected.", metadata: ["db.pid": "\(pid)"])
        return connection
    }

    /// Whether this session owns the projection (a session-level advisory lock: another
    /// instance's runner waits in `standby` and takes over when this session ends).
    private func owns(_ connection: PostgresConnection) async throws -> Bool {
        let result = try await connection.query(
            """
            SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                             AND classid = hashtext('projectionist')::oid AND objid = hashtext($1)::oid AND objsubid = 2)
                   OR pg_try_advisory_lock(hashtext('projectionist'), hashtext($1))
            """, [self.name])
        return try result[0].decode(Bool.self, at: 0)
    }

    // MARK: - One batch

    /// What one batch transaction produced, for the loop.
    struct StepResult: Sendable {
        var outcome: Outcome
        var status: ProjectionStatus
        var applied: Int
        var persisted: Bool
        var scanned: Int
        /// The next batch, read ahead while this one was applied.
        var readAhead: Batch?
    }

    private func step(_ connection: PostgresConnection, _ session: inout Session) async throws -> Outcome {
        let dead = session.dead
        var scan = session.scan ?? self.options.batchSize
        var readAhead = session.readAhead
        session.readAhead = nil
        // A second connection reads the next batch while the server applies this one (catch-up only).
        let reader = readAhead != nil || session.catchingUp ? try await self.readerConnection(&session) : nil
        // While catching up, one transaction carries several batches (fewer commits and locks);
        // after a handler failure, one batch per transaction until past it, so isolation sees it alone.
        let maxBatches = session.singleBatchUntil == nil ? max(1, self.options.batchesPerTransaction) : 1
        let result = try await connection.transaction { tx -> StepResult in
            let clock = ContinuousClock()
            let started = clock.now
            var (checkpoint, head) = try await self.checkpoints.lock(self.name, in: tx)
            var total = StepResult(outcome: .idle, status: self.status, applied: 0, persisted: false, scanned: 0, readAhead: nil)
            for round in 1...maxBatches {
                // Read ahead under an earlier snapshot: it holds only committed events, and a
                // position it lacks is at worst a gap that the resolver then finds visible.
                let batch =
                    if let ahead = readAhead, ahead.after == checkpoint { ahead }
                    else { try await self.read(after: checkpoint, scan: scan, on: tx) }
                readAhead = nil
                let frontier = Frontier.advance(from: checkpoint, visible: batch.positions, dead: dead)
                let events = batch.events.filter { $0.globalPosition <= frontier.position }
                var status = self.status
                status.head = max(head, batch.positions.last ?? 0)
                status.position = frontier.position
                status.state = frontier.isBlocked ? .waitingOnGap : (batch.positions.isEmpty ? .idle : .catchingUp)
                status.lastError = nil
                status.gapPosition = frontier.unresolved.first?.lowerBound
                status.gapHolder = nil
                scan = self.nextScan(scanned: batch.positions.count, inScope: events.count)
                let nextScan = scan
                async let next: Batch? =
                    if let reader, batch.full, !frontier.isBlocked {
                        self.prepared(try await self.read(after: frontier.position, scan: nextScan, on: reader))
                    } else { nil }
                let persist = frontier.position != checkpoint || !frontier.skipped.isEmpty
                try await self.apply(
                    events, statements: batch.statements, checkpoint: checkpoint, frontier: frontier,
                    highestVisible: batch.positions.last ?? checkpoint, status: persist ? status : nil, in: tx)
                total.outcome =
                    if frontier.isBlocked { .blocked(frontier.unresolved) }
                    else if frontier.position != checkpoint || batch.full { .progressed }
                    else { .idle }
                total.status = status
                total.applied += events.count
                total.persisted = total.persisted || persist
                total.scanned = batch.positions.count
                total.readAhead = try await next
                head = status.head
                checkpoint = frontier.position
                readAhead = total.readAhead
                guard total.readAhead != nil, round < maxBatches, clock.now - started < self.options.transactionTimeBudget else { break }
            }
            return total
        }
        if result.persisted { session.lastPersisted = .now }
        if let until = session.singleBatchUntil, result.status.position >= until { session.singleBatchUntil = nil }
        session.scan = scan
        session.readAhead = result.readAhead
        session.catchingUp = result.readAhead != nil || (result.status.state == .catchingUp && result.outcome.isProgress)
        self.board.update(self.name) { current in
            let total = current.applied + Int64(result.applied)
            current = result.status
            current.applied = total
        }
        return result.outcome
    }

    /// Applies the batch's events and records progress (`status` nil: the checkpoint did not move).
    /// A `StatementProjection`'s statements, the gap audit rows and the checkpoint update go in one
    /// pipeline with one sync: one round trip for the whole batch.
    private func apply(
        _ events: [PersistedEvent], statements precomputed: [StatementList]?, checkpoint: Int64, frontier: Frontier,
        highestVisible: Int64, status: ProjectionStatus?, in tx: Transaction
    ) async throws {
        func failure(_ error: HandlerError) -> BatchFailure {
            BatchFailure(events: events, checkpoint: checkpoint, frontier: frontier, highestVisible: highestVisible, error: error)
        }
        var pipeline = Pipeline()
        var owners: [Int] = []
        if let projection = self.projection as? any StatementProjection {
            owners.reserveCapacity(events.count)
            for (index, event) in events.enumerated() {
                let list = precomputed.map { $0[index] } ?? Self.statements(of: projection, for: event)
                switch list {
                case .failure(let error): throw failure(error)
                case .success(let statements):
                    for statement in statements {
                        pipeline.append(statement)
                        owners.append(index)
                    }
                }
            }
        } else if !events.isEmpty {
            do {
                try await self.projection.handle(batch: events, in: tx)
            } catch {
                if let postgres = error as? PostgresError, postgres.isTransient || Task.isCancelled { throw error }
                throw failure(HandlerError(event: Self.failingEvent(events, error), error: error))
            }
        }
        if let status {
            self.appendProgress(frontier.position, skipped: frontier.skipped, highestVisible: highestVisible, status: status, to: &pipeline)
        }
        do {
            try await tx.execute(pipeline, discardingResults: true)
        } catch let error as PostgresError {
            guard !Task.isCancelled, let handlerError = HandlerError(pipelineError: error, owners: owners, events: events) else {
                throw error
            }
            throw failure(handlerError)
        }
    }

    typealias StatementList = Result<[ProjectionStatement], HandlerError>

    static func statements(of projection: any StatementProjection, for event: PersistedEvent) -> StatementList {
        Result { try projection.statements(for: event) }.mapError { HandlerError(event: event, error: $0) }
    }

    /// A read-ahead batch with its statements already built (payloads decoded), so that client
    /// work overlaps the server's applying of the batch before it.
    private func prepared(_ batch: Batch) -> Batch {
        guard let projection = self.projection as? any StatementProjection else { return batch }
        var batch = batch
        batch.statements = batch.events.map { Self.statements(of: projection, for: $0) }
        return batch
    }

    /// The read-ahead connection, opened on first use.
    private func readerConnection(_ session: inout Session) async throws -> PostgresConnection {
        if let reader = session.reader { return reader }
        let reader = try await PostgresConnection.connect(self.database)
        session.reader = reader
        return reader
    }

    /// How many positions the next scoped read should scan: enough for `batchSize` in-scope
    /// events at the share just seen, within batchSize...scopedScanFactor × batchSize.
    private func nextScan(scanned: Int, inScope: Int) -> Int {
        let size = self.options.batchSize
        guard scanned > 0 else { return size }
        let wanted = inScope == 0 ? size * self.options.scopedScanFactor : size * scanned / inScope + size / 10
        return min(max(wanted, size), size * self.options.scopedScanFactor)
    }

    /// The event a batch failed on: the handler's own `HandlerError`, else the last event
    /// (the default batch handler stops at the failing one, so isolation finds it exactly).
    private static func failingEvent(_ events: [PersistedEvent], _ error: any Error) -> PersistedEvent {
        if let handlerError = error as? HandlerError, let event = events.first(where: { $0.globalPosition == handlerError.position }) {
            return event
        }
        return events[events.count - 1]
    }

    /// Checkpoint, state and gap audit rows: one pipeline, one round trip.
    private func commitProgress(
        _ position: Int64, skipped: [DeadRange], highestVisible: Int64, status: ProjectionStatus, in tx: Transaction
    ) async throws {
        var pipeline = Pipeline()
        self.appendProgress(position, skipped: skipped, highestVisible: highestVisible, status: status, to: &pipeline)
        try await tx.execute(pipeline, discardingResults: true)
    }

    /// Appends the gap audit rows and the checkpoint update to `pipeline`.
    private func appendProgress(
        _ position: Int64, skipped: [DeadRange], highestVisible: Int64, status: ProjectionStatus, to pipeline: inout Pipeline
    ) {
        for range in skipped {
            let (sql, parameters) = self.checkpoints.auditStatement(self.name, range, highestVisible: highestVisible)
            pipeline.append(sql, parameters)
            self.logger.debug(
                "Passed over a gap (audited).",
                metadata: [
                    "gap.from": "\(range.positions.lowerBound)", "gap.to": "\(range.positions.upperBound)",
                    "gap.reason": "\(range.reason.rawValue)",
                ])
        }
        let (sql, parameters) = self.checkpoints.advanceStatement(self.name, to: position, status: status)
        pipeline.append(sql, parameters)
    }

    struct Batch: Sendable {
        /// The checkpoint it was read after.
        var after: Int64 = 0
        var positions: [Int64] = []
        var events: [PersistedEvent] = []
        /// The read hit its LIMIT: more may be visible right away.
        var full = false
        /// Per event, its statements (read-ahead batches of a `StatementProjection` only).
        var statements: [Result<[ProjectionStatement], HandlerError>]?
    }

    /// Reads the next positions; rows out of scope come back as a position only (no payload).
    /// A scoped projection scans as many positions as the last batch's in-scope share suggests
    /// for `batchSize` events (up to `scopedScanFactor` × `batchSize`), so a narrow scope moves
    /// through the log in few transactions; it applies at most `batchSize` events: the batch
    /// ends just before the first in-scope event it leaves out.
    private func read(after checkpoint: Int64, scan: Int, on database: some PostgresQuerying) async throws -> Batch {
        let scoped = self.projection.aggregateTypes != nil || self.projection.eventTypes != nil
        let events = self.options.schema.eventsTable.quoted
        let columns = """
            aggregate_type, aggregate_id, aggregate_version, event_id, event_type, event_version, payload, metadata,
            trace_id, correlation_id, causation_id, created_at
            """
        let sql: String
        let limit = scoped ? scan : self.options.batchSize
        var parameters: [any PostgresEncodable] = [checkpoint, Int64(limit)]
        if scoped {
            var conditions: [String] = []
            if let types = self.projection.aggregateTypes {
                parameters.append(PostgresTextArray(types))
                conditions.append("aggregate_type = ANY($\(parameters.count)::text[])")
            }
            if let types = self.projection.eventTypes {
                parameters.append(PostgresTextArray(types))
                conditions.append("event_type = ANY($\(parameters.count)::text[])")
            }
            // The scope test runs once per row (the LIMIT keeps the subquery from being flattened),
            // and out-of-scope rows carry no data.
            let guarded = columns.split(separator: ",").map { "CASE WHEN in_scope THEN \($0.trimmingCharacters(in: .whitespacesAndNewlines)) END" }
            sql = """
                SELECT global_position, in_scope, \(guarded.joined(separator: ", "))
                FROM (SELECT *, (\(conditions.joined(separator: " AND "))) AS in_scope FROM \(events)
                      WHERE global_position > $1 ORDER BY global_position LIMIT $2) AS page
                """
        } else {
            sql = """
                SELECT global_position, true, \(columns)
                FROM \(events) WHERE global_position > $1 ORDER BY global_position LIMIT $2
                """
        }
        let result = try await database.query(sql, parameters)
        var batch = Batch(after: checkpoint)
        batch.positions.reserveCapacity(result.count)
        for row in result {
            let position = try row.decode(Int64.self, at: 0)
            guard try row.decode(Bool.self, at: 1) else {
                batch.positions.append(position)
                continue
            }
            if batch.events.count == self.options.batchSize {  // the next batch starts here
                batch.full = true
                return batch
            }
            batch.positions.append(position)
            batch.events.append(
                PersistedEvent(
                    globalPosition: position, aggregateType: try row.decode(at: 2), aggregateID: try row.decode(at: 3),
                    aggregateVersion: try row.decode(at: 4), eventID: try row.decode(at: 5), eventType: try row.decode(at: 6),
                    eventVersion: try row.decode(at: 7), payload: try row.decode(at: 8), metadata: try row.decode(at: 9),
                    traceID: try row.decode(at: 10), correlationID: try row.decode(at: 11),
                    causationID: try row.decode(at: 12), createdAt: try row.decode(at: 13)))
        }
        batch.full = result.count >= limit
        return batch
    }

    // MARK: - Idle

    /// Waits for a wake-up or `delay`, refreshing the heartbeat columns meanwhile.
    /// - Returns: true when woken by a notification.
    private func idle(_ connection: PostgresConnection, _ session: inout Session, for delay: Duration) async throws -> Bool {
        // Caught up: the read-ahead connection (a backend, a thread, libpq's grown buffers) is not needed.
        if let reader = session.reader {
            session.reader = nil
            session.readAhead = nil
            await reader.close()
        }
        let deadline = ContinuousClock.now + delay
        while !Task.isCancelled {
            let now = ContinuousClock.now
            if now - session.lastPersisted >= self.options.heartbeatInterval {
                try await self.checkpoints.recordState(self.name, status: self.status, on: connection)
                session.lastPersisted = now
            }
            let remaining = deadline - now
            guard remaining > .zero else { return false }
            let untilHeartbeat = self.options.heartbeatInterval - (now - session.lastPersisted)
            if await self.pause(for: min(remaining, max(untilHeartbeat, .milliseconds(1)))) { return true }
        }
        return false
    }

    // MARK: - Gaps

    /// Waits, hot, until every transaction that may own the missing positions has ended, then
    /// records the ones still invisible as dead. Returns early when the first one commits.
    private func resolve(_ unresolved: [ClosedRange<Int64>], _ connection: PostgresConnection, _ session: inout Session)
        async throws
    {
        guard let first = unresolved.first?.lowerBound else { return }
        var pending = try await self.resolver.holders(on: connection)
        let clock = ContinuousClock()
        let started = clock.now
        var warned = false
        var recorded = false
        while !pending.isEmpty {
            let holder = pending.first.map { GapHolder(pid: $0.pid, since: $0.transactionStart) }
            self.board.update(self.name) { status in
                status.state = .waitingOnGap
                status.gapPosition = first
                status.gapHolder = holder
            }
            let waited = clock.now - started
            if !warned && waited >= self.options.gapWarnAfter {
                warned = true
                self.logger.warning(
                    "Waiting on a gap: a transaction that may still commit it is open.",
                    metadata: [
                        "gap.position": "\(first)", "gap.holder.pid": "\(holder?.pid ?? 0)",
                        "gap.holder.since": "\(holder?.since.map { ISO8601DateFormatter().string(from: $0) } ?? "unknown")",
                        "gap.waited": "\(waited)",
                    ])
            }
            if let skipAfter = self.options.gapSkipAfter, waited >= skipAfter {
                for range in unresolved { session.dead.insert(range, reason: .timeout) }
                self.logger.warning(
                    "Skipping a gap after gap_skip_after although its owner may still commit.",
                    metadata: ["gap.position": "\(first)", "gap.holder.pid": "\(holder?.pid ?? 0)"])
                return
            }
            if !recorded && waited >= .milliseconds(500) || clock.now - session.lastPersisted >= self.options.heartbeatInterval {
                recorded = true
                try await self.checkpoints.recordState(self.name, status: self.status, on: connection)
                session.lastPersisted = clock.now
            }
            try await Task.sleep(for: self.options.gapRecheckInterval)
            let (stillHeld, visible) = try await self.resolver.recheck(pending, position: first, on: connection)
            if visible { return }  // its owner committed: the next batch applies it
            pending.removeAll { !stillHeld.contains($0.virtualTransaction) }
        }
        // Every possible owner has ended; this later statement's snapshot sees their commits.
        let visible = try await self.resolver.visiblePositions(in: unresolved, on: connection)
        for range in unresolved {
            var low = range.lowerBound
            for position in range where visible.contains(position) {
                if position > low { session.dead.insert(low...(position - 1), reason: .aborted) }
                low = position + 1
            }
            if low <= range.upperBound { session.dead.insert(low...range.upperBound, reason: .aborted) }
        }
    }

    // MARK: - Handler failures

    /// Re-runs a failed batch event by event, commits the good prefix, retries the failing
    /// event with backoff, then applies `onError`.
    private func isolate(_ failure: BatchFailure, _ session: inout Session) async throws {
        let connection = try await self.connected(&session)
        var failing = failure.error
        if failure.events.count > 1 {
            guard let found = try await self.commitGoodPrefix(failure, connection) else { return }
            failing = found
        }
        guard let event = failure.events.first(where: { $0.globalPosition == failing.position }) else { return }
        var delay = self.options.handlerRetryDelay
        for attempt in 1...max(1, self.options.handlerRetries) {
            self.logger.warning(
                "Handler failed; retrying the event.",
                metadata: ["position": "\(event.globalPosition)", "attempt": "\(attempt)", "error": "\(failing.underlying)"])
            try await Task.sleep(for: delay)
            delay = delay * 2
            switch try await self.applySingle(event, connection) {
            case .applied, .moved: return
            case .failed(let error): failing = error
            }
        }
        switch self.projection.onError {
        case .skip:
            try await self.deadLetter(event, failing, connection)
        case .stop:
            try await self.park(failing, connection, &session)
        }
    }

    /// Applies the batch's events one at a time under savepoints; commits everything before
    /// the first that fails. - Returns: that failure, or nil when the checkpoint moved meanwhile.
    private func commitGoodPrefix(_ failure: BatchFailure, _ connection: PostgresConnection) async throws -> HandlerError? {
        try await connection.transaction { tx -> HandlerError? in
            let (checkpoint, _) = try await self.checkpoints.lock(self.name, in: tx)
            guard checkpoint == failure.checkpoint else { return nil }  // reset meanwhile: start over
            var failed: HandlerError?
            for event in failure.events {
                try await tx.query("SAVEPOINT projectionist_event")
                do {
                    try await self.projection.handle(event, in: tx)
                    try await tx.query("RELEASE SAVEPOINT projectionist_event")
                } catch {
                    if let postgres = error as? PostgresError, postgres.isTransient || Task.isCancelled { throw error }
                    try await tx.query("ROLLBACK TO SAVEPOINT projectionist_event")
                    failed = HandlerError(event: event, error: error)
                    break
                }
            }
            let position = failed.map { $0.position - 1 } ?? failure.frontier.position
            let skipped = failure.frontier.skipped.filter { $0.positions.upperBound <= position }
            var status = self.status
            status.position = position
            status.state = .catchingUp
            try await self.commitProgress(position, skipped: skipped, highestVisible: failure.highestVisible, status: status, in: tx)
            self.board.update(self.name) { $0.position = position }
            return failed
        }
    }

    enum SingleOutcome {
        case applied
        /// The checkpoint is no longer just before the event (a reset moved it).
        case moved
        case failed(HandlerError)
    }

    private func applySingle(_ event: PersistedEvent, _ connection: PostgresConnection) async throws -> SingleOutcome {
        do {
            return try await connection.transaction { tx -> SingleOutcome in
                let (checkpoint, _) = try await self.checkpoints.lock(self.name, in: tx)
                guard checkpoint == event.globalPosition - 1 else { return .moved }
                do {
                    try await self.projection.handle(event, in: tx)
                } catch {
                    if let postgres = error as? PostgresError, postgres.isTransient || Task.isCancelled { throw error }
                    throw HandlerError(event: event, error: error)
                }
                var status = self.status
                status.position = event.globalPosition
                status.state = .catchingUp
                status.lastError = nil
                let (sql, parameters) = self.checkpoints.advanceStatement(self.name, to: event.globalPosition, status: status)
                try await tx.query(sql, parameters)
                return .applied
            }
        } catch let error as HandlerError {
            return .failed(error)
        }
    }

    /// `on_error: skip`: a dead-letter row and the checkpoint past the event, in one transaction.
    private func deadLetter(_ event: PersistedEvent, _ error: HandlerError, _ connection: PostgresConnection) async throws {
        try await connection.transaction { tx in
            let (checkpoint, _) = try await self.checkpoints.lock(self.name, in: tx)
            guard checkpoint == event.globalPosition - 1 else { return }
            var pipeline = Pipeline()
            let (letter, letterParameters) = self.checkpoints.deadLetterStatement(self.name, error)
            pipeline.append(letter, letterParameters)
            var status = self.status
            status.position = event.globalPosition
            status.state = .catchingUp
            status.lastError = error.description
            let (advance, advanceParameters) = self.checkpoints.advanceStatement(self.name, to: event.globalPosition, status: status)
            pipeline.append(advance, advanceParameters)
            try await tx.execute(pipeline)
        }
        self.logger.error(
            "Event dead-lettered (on_error: skip).",
            metadata: ["position": "\(event.globalPosition)", "event.id": "\(error.eventID)", "error": "\(error.underlying)"])
        self.board.update(self.name) { status in
            status.position = event.globalPosition
            status.lastError = error.description
        }
    }

    /// `on_error: stop`: stays at the event (state `failed`) until the longest backoff has passed
    /// (then the event is tried again) or the checkpoint is reset.
    private func park(_ error: HandlerError, _ connection: PostgresConnection, _ session: inout Session) async throws {
        var parked = self.status
        parked.state = .failed
        parked.lastError = error.description
        parked.position = error.position - 1
        self.logger.error(
            "Projection stopped at a failing event (on_error: stop).",
            metadata: ["position": "\(error.position)", "event.id": "\(error.eventID)", "error": "\(error.underlying)"])
        // The row first, then the live status: whoever sees `failed` live finds it stored too.
        try await self.checkpoints.recordState(self.name, status: parked, on: connection)
        self.board.update(self.name) { $0 = parked }
        session.lastPersisted = .now
        let clock = ContinuousClock()
        let deadline = clock.now + self.options.maxReconnectDelay
        while clock.now < deadline {
            _ = await self.pause(for: min(self.options.pollInterval, deadline - clock.now))
            try Task.checkCancellation()
            let position = try await connection.query(
                "SELECT last_position FROM \(self.checkpoints.checkpoints) WHERE consumer_name = $1", [self.name]
            ).first?.decode(Int64.self, at: 0)
            if position != error.position - 1 { return }  // reset or rewound: carry on from there
            if clock.now - session.lastPersisted >= self.options.heartbeatInterval {
                try await self.checkpoints.recordState(self.name, status: self.status, on: connection)
                session.lastPersisted = clock.now
            }
        }
    }
}


extension ProjectionRunner.Outcome {
    var isProgress: Bool {
        if case .progressed = self { return true }
        return false
    }
}
