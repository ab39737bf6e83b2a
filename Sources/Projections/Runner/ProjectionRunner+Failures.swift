import Encryption
import EventStore
import Logging
import Postgres

/// The failure path of a runner: isolate the failing event of a batch, retry it alone, then
/// dead-letter it (`on_error: skip`) or park before it (`on_error: stop`).
extension ProjectionRunner {
    /// Re-runs a failed batch event by event under savepoints and commits everything before the
    /// first event that fails — with the positions before it that are out of scope or dead, so
    /// that the checkpoint ends just before the failing event whatever precedes it.
    func isolate(_ failure: BatchFailure, token: Int64, on connection: PostgresConnection) async throws -> IsolationResult {
        try await connection.transaction { tx -> IsolationResult in
            let (checkpoint, _, parkedVersion) = try await self.lock(token, in: tx)
            // A reset meanwhile, or a retry or discard that changed the parked set: start over.
            guard checkpoint == failure.checkpoint, parkedVersion == failure.parkedSet.version ?? parkedVersion else { return .moved }
            var failing: (PersistedEvent, HandlerError)?
            // Decrypted here, in the transaction that applies them: a key destroyed since the
            // batch was read must not put its plaintext back.
            let decrypted = try await self.reader.decryptAgain(failure.events, on: tx)
            for (event, decryption) in zip(failure.events, decrypted) {
                try await tx.query("SAVEPOINT projectionist_event")
                do {
                    try await self.projection.handle(try decryption.get(), in: tx)
                    // The event's deferred constraints, checked now (the COMMIT would blame no
                    // event); rolling the check's savepoint back keeps the constraints' modes.
                    try await tx.execute(script: Self.checkDeferred + "; RELEASE SAVEPOINT projectionist_event")
                } catch {
                    let handlerError = HandlerError.wrapping(error, in: [event])
                    guard case .handler = RunnerFailure.classify(handlerError, cancelled: Task.isCancelled) else { throw error }
                    try await tx.query("ROLLBACK TO SAVEPOINT projectionist_event")
                    failing = (event, self.reported(handlerError))
                    break
                }
            }
            let position = failing.map { $0.0.globalPosition - 1 } ?? failure.frontier.position
            let skipped = failure.frontier.skipped.filter { $0.positions.upperBound <= position }
            var status = self.status
            status.position = position
            status.state = .catchingUp
            var pipeline = Pipeline()
            self.appendParked(failure.parked.filter { $0.globalPosition <= position }, parked: failure.parkedSet, to: &pipeline)
            self.appendProgress(
                position, skipped: skipped, highestVisible: failure.highestVisible, token: token, status: status, to: &pipeline)
            try await tx.execute(pipeline, discardingResults: true)
            self.board.update(self.name) { $0.position = position }
            return failing.map { .failing($0.0, $0.1) } ?? .passed
        }
    }

    /// Checks the deferred constraints (and constraint triggers) pending so far, under a
    /// savepoint rolled back afterwards so that every constraint keeps its mode.
    static let checkDeferred =
        "SAVEPOINT projectionist_check; SET CONSTRAINTS ALL IMMEDIATE; ROLLBACK TO SAVEPOINT projectionist_check"

    /// Applies one event alone, with the checkpoint just before it (decrypted again in its
    /// transaction, as in `isolate`).
    func retry(_ event: PersistedEvent, token: Int64, on connection: PostgresConnection) async throws -> RetryResult {
        do {
            return try await connection.transaction { tx -> RetryResult in
                let (checkpoint, _, _) = try await self.lock(token, in: tx)
                guard checkpoint == event.globalPosition - 1 else { return .moved }
                do {
                    try await self.projection.handle(try await self.reader.decryptAgain([event], on: tx)[0].get(), in: tx)
                    // Its deferred constraints now, so that a failure is this event's.
                    try await tx.query("SET CONSTRAINTS ALL IMMEDIATE")
                } catch {
                    let handlerError = HandlerError.wrapping(error, in: [event])
                    guard case .handler = RunnerFailure.classify(handlerError, cancelled: Task.isCancelled) else { throw error }
                    throw self.reported(handlerError)
                }
                var status = self.status
                status.position = event.globalPosition
                status.state = .catchingUp
                status.lastError = nil
                let (sql, parameters) = self.checkpoints.advanceStatement(self.name, to: event.globalPosition, token: token, status: status)
                try await tx.query(sql, parameters)
                return .applied
            }
        } catch let error as HandlerError {
            return .failed(error)
        }
    }

    /// `on_error: skip` or `park`: a dead-letter row (status `skipped`, or `parked` with the
    /// unit's `parked_version` raised: the aggregate is parked from this event on) and the
    /// checkpoint past the event, in one transaction.
    func deadLetter(_ event: PersistedEvent, _ error: HandlerError, token: Int64, on connection: PostgresConnection) async throws {
        let parks = self.projection.onError == .park
        let written = try await connection.transaction { tx -> Bool in
            let (checkpoint, _, _) = try await self.lock(token, in: tx)
            guard checkpoint == event.globalPosition - 1 else { return false }
            var pipeline = Pipeline()
            let (letter, letterParameters) = self.deadLetters.letterStatement(
                self.name, event, error, status: parks ? .parked : .skipped)
            pipeline.append(letter, letterParameters)
            if parks {
                let (bump, bumpParameters) = self.deadLetters.bumpStatement(self.name)
                pipeline.append(bump, bumpParameters)
            }
            var status = self.status
            status.position = event.globalPosition
            status.state = .catchingUp
            status.lastError = error.description
            let (advance, advanceParameters) = self.checkpoints.advanceStatement(
                self.name, to: event.globalPosition, token: token, status: status)
            pipeline.append(advance, advanceParameters)
            try await tx.execute(pipeline)
            return true
        }
        guard written else { return }
        self.logger.error(
            parks ? "Aggregate parked at a failing event (on_error: park); its later events wait as dead letters." : "Event dead-lettered (on_error: skip).",
            metadata: [
                "position": "\(event.globalPosition)", "event.id": "\(error.eventID)", "error": "\(error.underlying)",
                "aggregate": "\(AggregateKey(of: event))",
            ])
        self.board.update(self.name) { status in
            status.position = event.globalPosition
            status.lastError = error.description
        }
    }

    /// A handler error as it is stored, logged and served: redacted for a projection that
    /// `redactsErrors` (no decrypted value may outlive its key in an error's text).
    func reported(_ error: HandlerError) -> HandlerError {
        self.projection.redactsErrors ? error.redacted() : error
    }

    /// The fencing step that opens each of the runner's transactions (`CheckpointStore.lock`).
    func lock(_ token: Int64, in tx: Transaction) async throws -> (position: Int64, head: Int64, parkedVersion: Int64) {
        try await self.checkpoints.lock(self.name, token: token, idleTimeout: self.options.idleTransactionTimeout, in: tx)
    }

    /// `on_error: stop`: records the state `failed` just before the event.
    func halt(_ event: PersistedEvent, _ error: HandlerError, token: Int64, on connection: PostgresConnection) async throws {
        var halted = self.status
        halted.state = .failed
        halted.lastError = error.description
        halted.position = event.globalPosition - 1
        self.logger.error(
            "Projection stopped at a failing event (on_error: stop).",
            metadata: ["position": "\(error.position)", "event.id": "\(error.eventID)", "error": "\(error.underlying)"])
        // The row first, then the live status: whoever sees `failed` live finds it stored too.
        try await self.recordState(token: token, status: halted, on: connection)
        self.board.update(self.name) { $0 = halted }
    }
}
