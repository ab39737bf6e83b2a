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
    func runBatch(_ plan: RunnerStateMachine.BatchPlan, on connection: PostgresConnection, _ session: inout Session)
        async throws -> BatchSummary
    {
        var scan = session.scan ?? self.options.batchSize
        var readAhead = session.readAhead
        session.readAhead = nil
        var readAheadFailed = false
        // A second connection reads the next batch while the server applies this one (catch-up only).
        var reader: PostgresConnection?
        if plan.readAhead || readAhead != nil {
            do {
                reader = try await self.readerConnection(&session)
            } catch where !Task.isCancelled {
                readAheadFailed = true
                self.dropReader(&session, because: error)
            }
        }
        let activeReader = reader
        let (summary, status, applied, next, readerFailed) = try await connection.transaction { tx in
            let clock = ContinuousClock()
            let started = clock.now
            let (start, storedHead) = try await self.checkpoints.lock(self.name, in: tx)
            var checkpoint = start
            var head = storedHead
            var summary = BatchSummary(outcome: .idle, checkpoint: start)
            var status = self.status
            var applied = 0
            var readerFailed: (any Error)?
            for round in 1...max(1, plan.maxBatches) {
                // Read ahead under an earlier snapshot: it holds only committed events, and a
                // position it lacks is at worst a gap that the resolver then finds visible.
                let batch =
                    if let ahead = readAhead, ahead.after == checkpoint { ahead }
                    else { try await self.reader.read(after: checkpoint, scan: scan, on: tx) }
                readAhead = nil
                let frontier = Frontier.advance(from: checkpoint, visible: batch.positions, dead: plan.dead)
                let events = batch.events.filter { $0.globalPosition <= frontier.position }
                status.head = max(head, batch.positions.last ?? 0)
                status.position = frontier.position
                status.state = frontier.isBlocked ? .waitingOnGap : (batch.positions.isEmpty ? .idle : .catchingUp)
                status.lastError = nil
                status.gapPosition = frontier.unresolved.first?.lowerBound
                status.gapHolder = nil
                scan = self.reader.nextScan(scanned: batch.positions.count, inScope: events.count)
                let nextScan = scan
                let readerUsable = readerFailed == nil
                // The read-ahead runs on its own connection, concurrently with this batch's pipeline.
                async let ahead: Result<Batch, any Error>? =
                    if let activeReader, readerUsable, batch.full, !frontier.isBlocked {
                        await self.readAhead(after: frontier.position, scan: nextScan, on: activeReader)
                    } else { nil }
                let persist = frontier.position != checkpoint || !frontier.skipped.isEmpty
                do {
                    try await self.apply(
                        events, statements: batch.statements, checkpoint: checkpoint, frontier: frontier,
                        highestVisible: batch.positions.last ?? checkpoint, status: persist ? status : nil, in: tx)
                } catch var failure as BatchFailure {
                    _ = await ahead
                    failure.transactionStart = start
                    throw failure
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
                guard readAhead != nil, round < plan.maxBatches, clock.now - started < self.options.transactionTimeBudget else { break }
            }
            summary.readAhead = readAhead != nil
            return (summary, status, applied, readAhead, readerFailed)
        }
        if let readerFailed {
            readAheadFailed = true
            self.dropReader(&session, because: readerFailed)
        }
        var result = summary
        result.readAheadFailed = readAheadFailed
        session.scan = scan
        session.readAhead = next
        self.board.update(self.name) { current in
            let total = current.applied + Int64(applied)
            current = status
            current.applied = total
        }
        return result
    }

    /// Applies the batch's events and records progress (`status` nil: the checkpoint did not move).
    /// A `StatementProjection`'s statements, the gap audit rows and the checkpoint update go in one
    /// pipeline with one sync: one round trip for the whole batch.
    private func apply(
        _ events: [PersistedEvent], statements precomputed: [StatementList]?, checkpoint: Int64, frontier: Frontier,
        highestVisible: Int64, status: ProjectionStatus?, in tx: Transaction
    ) async throws {
        func failure(_ error: HandlerError) -> BatchFailure {
            BatchFailure(
                events: events, checkpoint: checkpoint, transactionStart: checkpoint, frontier: frontier,
                highestVisible: highestVisible, error: error)
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
                guard case .handler = RunnerFailure.classify(HandlerError.wrapping(error, in: events), cancelled: Task.isCancelled) else {
                    throw error
                }
                throw failure(HandlerError.wrapping(error, in: events))
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

    /// Reads the batch after `position` on the read-ahead connection; a failure is a value, so
    /// that it never rolls back the transaction the main connection is applying.
    private func readAhead(after position: Int64, scan: Int, on reader: PostgresConnection) async -> Result<Batch, any Error> {
        do {
            return .success(self.prepared(try await self.reader.read(after: position, scan: scan, on: reader)))
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

    /// The read-ahead connection, opened on first use.
    private func readerConnection(_ session: inout Session) async throws -> PostgresConnection {
        if let reader = session.readerConnection { return reader }
        let reader = try await PostgresConnection.connect(self.database)
        session.readerConnection = reader
        return reader
    }

    /// Closes the read-ahead connection after it failed; the main connection carries on.
    func dropReader(_ session: inout Session, because error: any Error) {
        self.logger.warning("The read-ahead connection failed; going on without it.", metadata: ["error": "\(error)"])
        if let reader = session.readerConnection {
            session.readerConnection = nil
            Task { await reader.close() }
        }
        session.readAhead = nil
    }

    /// Appends the gap audit rows and the checkpoint update to `pipeline`.
    func appendProgress(
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
}

extension HandlerError {
    /// `error` as the handler error of one of `events`: the handler's own `HandlerError`, else one
    /// for the last event (the default batch handler stops at the failing one, so isolation finds
    /// it exactly).
    static func wrapping(_ error: any Error, in events: [PersistedEvent]) -> HandlerError {
        if let handlerError = error as? HandlerError { return handlerError }
        return HandlerError(event: events[events.count - 1], error: error)
    }
}
