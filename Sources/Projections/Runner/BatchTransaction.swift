import EventStore
import Logging
import Postgres

/// One batch transaction of a runner: lock the checkpoint row, read (or take the batch read
/// ahead), apply the contiguous prefix, move the checkpoint and audit dead gaps — for up to
/// `plan.maxBatches` batches — then commit. A crash anywhere re-runs at most this transaction.
extension ProjectionRunner {
    /// - Throws: `BatchFailure` when a handler failed (the transaction rolled back), any other
    ///   error from the main connection. A failure of the read-ahead connection is not thrown:
    ///   the reader is dropped and the transaction commits what it applied.
    func runBatch(_ plan: RunnerStateMachine.BatchPlan, token: Int64, on connection: PostgresConnection, _ session: inout Session)
        async throws -> BatchSummary
    {
        // A second connection reads the next batch while the server applies this one (catch-up
        // only): borrowed without waiting (the runner holds one already), none free means no
        // read-ahead this transaction; given back when the transaction ends.
        // Not while the unit takes from the shared window: the shared reader reads ahead for all.
        let rounds = BatchRounds(
            plan: plan, budget: self.options.transactionTimeBudget, sharing: session.sharing && self.sharedLog != nil, started: .now)
        let reader = rounds.opensReader(holdingReadAhead: session.readAhead != nil) ? await self.pool.tryLease() : nil
        do {
            let summary = try await self.runBatch(rounds, token: token, on: connection, reader: reader, &session)
            if let reader { await self.pool.release(reader, discard: summary.readAheadFailed) }
            return summary
        } catch {
            if let reader { await self.pool.release(reader, after: error) }
            throw error
        }
    }

    private func runBatch(
        _ rounds: BatchRounds, token: Int64, on connection: PostgresConnection, reader activeReader: PostgresConnection?,
        _ session: inout Session
    ) async throws -> BatchSummary {
        let plan = rounds.plan
        var rounds = rounds
        var scan = session.scan ?? self.options.batchSize
        var readAhead = session.readAhead
        session.readAhead = nil
        var readAheadFailed = false
        let sharedLog = rounds.sharing ? self.sharedLog : nil
        let (summary, status, applied, next, readerFailed) = try await self.transactionBlamingCommit(on: connection) { tx, committing in
            let (start, storedHead, parkedVersion) = try await self.lock(token, in: tx)
            let parked = try await self.parkedSet(at: parkedVersion, in: tx)
            var checkpoint = start
            var head = storedHead
            var summary = BatchSummary(outcome: .idle, checkpoint: start)
            var status = self.status
            var applied = 0
            var readerFailed: (any Error)?
            // A StatementProjection's batch is sent without waiting for its results: the next
            // batch's pipeline goes out before this one's sync returns, so the server never idles
            // between batches. Its results are read (and a failure raised) one batch later.
            var inFlight: SentBatch?
            var lastWork: BatchWork?
            do {
                while true {
                    // Read ahead, or by the shared reader, under an earlier snapshot: it holds only
                    // committed events, and a position it lacks is at worst a gap that the resolver
                    // then finds visible. (A read on the main connection happens only with nothing
                    // in flight: round 1, or a window that no longer covers the checkpoint.)
                    let batch: Batch
                    switch rounds.source(after: checkpoint, readAheadAfter: readAhead?.after) {
                    case .readAhead: batch = try await self.recheck(readAhead!, &inFlight, in: tx)
                    case .window:
                        if let shared = await sharedLog?.take(self.name, after: checkpoint, limit: plan.batchSize, scope: self.reader.scope) {
                            batch = try await self.decrypted(shared, &inFlight, in: tx)
                        } else {
                            if let previous = inFlight {
                                inFlight = nil
                                try await self.finish(previous, draining: nil, on: tx.connection)
                            }
                            batch = try await self.reader.read(after: checkpoint, scan: scan, limit: plan.batchSize, on: tx)
                        }
                    case .read: batch = try await self.reader.read(after: checkpoint, scan: scan, limit: plan.batchSize, on: tx)
                    }
                    readAhead = nil
                    let frontier = Frontier.advance(from: checkpoint, visible: batch.positions, dead: plan.dead)
                    // The events of parked aggregates become dead letters instead (none parked: a no-op).
                    let (events, held, kept) = parked.split(batch.events.filter { $0.globalPosition <= frontier.position })
                    let statements = held.isEmpty ? batch.statements : batch.statements.map { built in kept.map { built[$0] } }
                    status.head = max(head, batch.positions.last ?? 0)
                    status.position = frontier.position
                    status.state = frontier.isBlocked ? .waitingOnGap : (batch.positions.isEmpty ? .idle : .catchingUp)
                    status.lastError = nil
                    status.gapPosition = frontier.unresolved.first?.lowerBound
                    status.gapHolder = nil
                    scan = self.reader.nextScan(scanned: batch.positions.count, inScope: events.count)
                    let nextScan = scan
                    let readsAhead = rounds.readsAhead(readerUsable: readerFailed == nil, full: batch.full, blocked: frontier.isBlocked)
                    // The read-ahead runs on its own connection, concurrently with the pipelines.
                    async let ahead: Result<Batch, any Error>? =
                        if let activeReader, readsAhead {
                            await self.readAhead(after: frontier.position, scan: nextScan, limit: plan.batchSize, on: activeReader)
                        } else { nil }
                    let persist = frontier.position != checkpoint || !frontier.skipped.isEmpty
                    let work = BatchWork(
                        events: events, statements: statements, checkpoint: checkpoint, frontier: frontier,
                        highestVisible: batch.positions.last ?? checkpoint, token: token, status: persist ? status : nil,
                        transactionStart: start, parked: held, parkedSet: parked)
                    // The COMMIT's failure is blamed on the last batch that applied events (one of
                    // held-back events only has no event to blame: the one before it is).
                    if !events.isEmpty { lastWork = work }
                    if let projection = self.projection as? any StatementProjection {
                        let previous = inFlight
                        inFlight = nil
                        let sent = try await self.send(work, of: projection, after: previous, on: tx.connection)
                        if let previous { try await self.finish(previous, draining: sent?.ticket, on: tx.connection) }
                        inFlight = sent
                        if !self.options.pipelinesInFlight, let sent {
                            inFlight = nil
                            try await self.finish(sent, draining: nil, on: tx.connection)
                        }
                    } else {
                        try await self.apply(work, in: tx)
                    }
                    summary.outcome =
                        if frontier.isBlocked { .blocked(frontier.unresolved) }
                        else if frontier.position != checkpoint || batch.full { .progressed }
                        else { .idle }
                    summary.full = batch.full
                    summary.persisted = summary.persisted || persist
                    summary.checkpoint = frontier.position
                    applied += events.count
                    switch await ahead {
                    case .success(let next)?: readAhead = next
                    case .failure(let error)?: if Task.isCancelled { throw error } else { readerFailed = error }
                    case nil: break
                    }
                    head = status.head
                    checkpoint = frontier.position
                    let windowHasRows = await sharedLog?.hasRows(after: checkpoint) ?? false
                    guard
                        rounds.another(
                            readAheadReady: readAhead != nil, windowHasRows: windowHasRows, full: batch.full, blocked: frontier.isBlocked,
                            now: .now)
                    else { break }
                }
                if let last = inFlight {
                    inFlight = nil
                    try await self.finish(last, draining: nil, on: tx.connection)
                }
            } catch var failure as BatchFailure {
                failure.transactionStart = start
                throw failure
            } catch {
                // Whatever failed, read what is still in flight (its own failure comes first).
                if let last = inFlight { try await self.finish(last, draining: nil, on: tx.connection) }
                throw error
            }
            summary.readAhead = readAhead != nil
            committing = lastWork
            return (summary, status, applied, readAhead, readerFailed)
        }
        self.reader.undecryptable.forget(through: summary.checkpoint)
        session.knownCheckpoint = summary.checkpoint
        if let sharedLog { await sharedLog.moved(self.name, to: summary.checkpoint) }
        if let readerFailed {
            readAheadFailed = true
            self.dropReader(&session, because: readerFailed)
        }
        var result = summary
        result.readAheadFailed = readAheadFailed
        session.scan = scan
        session.readAhead = next
        let now = ContinuousClock.now
        session.rate.add(applied, at: now)
        self.metrics.recordApplied(applied)
        let rate = session.rate.rate(at: now)
        self.board.update(self.name) { current in
            let total = current.applied + Int64(applied)
            current = status
            current.applied = total
            current.eventsPerSecond = rate
        }
        return result
    }

    /// A batch read ahead (decrypted under the read-ahead's snapshot), checked in `tx` against
    /// data keys destroyed since (`BatchReader.recheck`). The check is a statement on the main
    /// connection, so a pipeline still in flight is read first.
    private func recheck(_ batch: Batch, _ inFlight: inout SentBatch?, in tx: Transaction) async throws -> Batch {
        guard !batch.keys.isEmpty else { return batch }
        if let previous = inFlight {
            inFlight = nil
            try await self.finish(previous, draining: nil, on: tx.connection)
        }
        return try await self.reader.recheck(batch, on: tx)
    }

    /// A batch from the shared window, decrypted in `tx` for a projection that decrypts (the
    /// window holds the stored payloads). The key query is a statement on the main connection,
    /// so a pipeline still in flight is read first.
    private func decrypted(_ batch: Batch, _ inFlight: inout SentBatch?, in tx: Transaction) async throws -> Batch {
        guard let decryptor = self.reader.decryptor, !batch.events.isEmpty else { return batch }
        if let previous = inFlight {
            inFlight = nil
            try await self.finish(previous, draining: nil, on: tx.connection)
        }
        var batch = batch
        try await self.reader.decrypt(&batch, with: decryptor, on: tx)
        return batch
    }

    /// Runs a batch transaction; `body` hands back, once done, the last batch's work. A COMMIT
    /// that fails after it (a constraint checked at commit, `DEFERRABLE INITIALLY DEFERRED`) is
    /// blamed on that batch like a handler error (`commitFailure`).
    private func transactionBlamingCommit<T>(
        on connection: PostgresConnection, _ body: (Transaction, inout BatchWork?) async throws -> T
    ) async throws -> T {
        var committing: BatchWork?
        do {
            return try await connection.transaction { tx in try await body(tx, &committing) }
        } catch let error as PostgresError {
            guard let work = committing, let failure = Self.commitFailure(error, of: work, cancelled: Task.isCancelled) else { throw error }
            throw failure
        }
    }

    /// Sends a `StatementProjection`'s statements for the batch, its gap audit rows and the
    /// checkpoint update as one pipeline with one sync, without waiting for the results.
    /// - Returns: the batch in flight; nil when there was nothing to send.
    /// - Throws: `BatchFailure` when building an event's statements failed (after reading the
    ///   batch still in flight, whose own failure comes first).
    private func send(
        _ work: BatchWork, of projection: any StatementProjection, after previous: SentBatch?, on connection: PostgresConnection
    ) async throws -> SentBatch? {
        var pipeline = Pipeline()
        var owners: [Int] = []
        owners.reserveCapacity(work.events.count)
        let undecryptable = self.reader.undecryptable.errors(in: work.events)
        for (index, event) in work.events.enumerated() {
            let undecryptable = undecryptable[event.globalPosition].map { StatementList.failure(HandlerError(event: event, error: $0)) }
            switch undecryptable ?? work.statements.map({ $0[index] }) ?? Self.statements(of: projection, for: event) {
            case .failure(let error):
                if let previous { try await self.finish(previous, draining: nil, on: connection) }
                throw work.failure(error)
            case .success(let statements):
                for statement in statements {
                    pipeline.append(statement)
                    owners.append(index)
                }
            }
        }
        self.appendParked(work.parked, parked: work.parkedSet, to: &pipeline)
        if let status = work.status {
            self.appendProgress(work.frontier.position, skipped: work.frontier.skipped, highestVisible: work.highestVisible, token: work.token,
                status: status, to: &pipeline)
        }
        if pipeline.isEmpty { return nil }
        // Keep what a failure needs (the events), not the statements already on the wire.
        var sent = work
        sent.statements = nil
        return SentBatch(ticket: try await connection.send(pipeline, discardingResults: true), work: sent, owners: owners)
    }

    /// Reads a sent batch's results. On failure, reads the later pipeline (`draining`) too, so
    /// that the connection leaves pipeline mode, then throws the batch's `BatchFailure` (a
    /// handler's statement failed) or the error.
    private func finish(_ sent: SentBatch, draining later: PipelineTicket?, on connection: PostgresConnection) async throws {
        do {
            try await connection.results(of: sent.ticket)
        } catch let error as PostgresError {
            if let later { _ = try? await connection.results(of: later) }
            guard !Task.isCancelled, let handlerError = HandlerError(pipelineError: error, owners: sent.owners, events: sent.work.events) else {
                throw error
            }
            throw sent.work.failure(handlerError)
        }
    }

    /// Applies a batch through `Projection.handle(batch:in:)` (projections that may read), then
    /// records progress in one pipeline.
    private func apply(_ work: BatchWork, in tx: Transaction) async throws {
        if let undecryptable = self.reader.undecryptable.firstFailure(in: work.events) { throw work.failure(undecryptable) }
        if !work.events.isEmpty {
            do {
                try await self.projection.handle(batch: work.events, in: tx)
            } catch {
                let handlerError = HandlerError.wrapping(error, in: work.events)
                guard case .handler = RunnerFailure.classify(handlerError, cancelled: Task.isCancelled) else { throw error }
                throw work.failure(handlerError)
            }
        }
        var pipeline = Pipeline()
        self.appendParked(work.parked, parked: work.parkedSet, to: &pipeline)
        if let status = work.status {
            self.appendProgress(work.frontier.position, skipped: work.frontier.skipped, highestVisible: work.highestVisible, token: work.token,
                status: status, to: &pipeline)
        }
        if pipeline.isEmpty { return }
        try await tx.execute(pipeline, discardingResults: true)
    }

    /// Reads the batch after `position` on the read-ahead connection; a failure is a value, so
    /// that it never rolls back the transaction the main connection is applying.
    private func readAhead(after position: Int64, scan: Int, limit: Int, on reader: PostgresConnection) async -> Result<Batch, any Error> {
        do {
            return .success(self.prepared(try await self.reader.read(after: position, scan: scan, limit: limit, on: reader)))
        } catch {
            return .failure(error)
        }
    }

    /// A read-ahead batch with its statements already built (payloads decoded), so that client
    /// work overlaps the server's applying of the batch before it.
    private func prepared(_ batch: Batch) -> Batch {
        guard let projection = self.projection as? any StatementProjection else { return batch }
        var batch = batch
        batch.statements = batch.events.map { Self.statements(of: projection, for: $0) }
        return batch
    }

    /// The read-ahead failed (its connection goes back to the pool as broken); the main
    /// connection carries on.
    func dropReader(_ session: inout Session, because error: any Error) {
        self.logger.warning("The read-ahead connection failed; going on without it.", metadata: ["error": "\(error)"])
        session.readAhead = nil
    }

    /// Appends the gap audit rows and the checkpoint update to `pipeline`.
    func appendProgress(
        _ position: Int64, skipped: [DeadRange], highestVisible: Int64, token: Int64, status: ProjectionStatus,
        to pipeline: inout Pipeline
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
        let (sql, parameters) = self.checkpoints.advanceStatement(self.name, to: position, token: token, status: status)
        pipeline.append(sql, parameters)
    }
}
