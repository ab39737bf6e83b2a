import EventStore
import Foundation
import Logging
import Postgres

/// Keeps one unit of work (a projection, or one partition of it) up to date while this instance
/// holds the unit's lease, until its task is cancelled. It holds no connection of its own: each
/// action borrows one from the worker's `ConnectionPool` for its duration (`borrow`), so an idle
/// unit holds none.
///
/// A thin driver: `RunnerStateMachine` decides what to do next, this performs it (SQL, waits,
/// logs, the live status) and reports back what happened. Each batch is one transaction that
/// locks the checkpoint row, applies the contiguous prefix of what it read, moves the
/// checkpoint and audits dead gaps (`BatchTransaction.swift`); handler failures are isolated
/// to the failing event (`ProjectionRunner+Failures.swift`); gaps are waited on in
/// `ProjectionRunner+Gaps.swift`, leases and borrowing in `ProjectionRunner+Ownership.swift`. Every transaction runs under the
/// lease's fencing token (`CheckpointStore.lock`); without a lease the runner stands by. It
/// never throws.
public struct ProjectionRunner: Sendable {
    public let unit: WorkUnit
    public var projection: any Projection { self.unit.projection }
    let pool: ConnectionPool
    let options: RuntimeOptions
    let board: StatusBoard
    let wakeup: Wakeup
    let leases: Leases
    let logger: Logger
    let checkpoints: CheckpointStore
    let resolver: GapResolver
    let reader: BatchReader
    let metrics: UnitMetrics
    /// The worker's shared reader; nil when this unit reads on its own.
    let sharedLog: SharedLog?
    let deadLetters: DeadLetterStore
    /// The unit's parked aggregates as last read (`parkedSet(at:in:)`).
    let parkedCache = ParkedCache()

    public init(
        unit: WorkUnit, pool: ConnectionPool, options: RuntimeOptions, board: StatusBoard,
        wakeup: Wakeup, leases: Leases, logger: Logger
    ) {
        self.init(unit: unit, pool: pool, options: options, board: board, wakeup: wakeup, leases: leases, logger: logger, sharedLog: nil)
    }

    init(
        unit: WorkUnit, pool: ConnectionPool, options: RuntimeOptions, board: StatusBoard,
        wakeup: Wakeup, leases: Leases, logger: Logger, sharedLog: SharedLog?
    ) {
        self.sharedLog = sharedLog
        self.unit = unit
        self.pool = pool
        self.options = options
        self.board = board
        self.wakeup = wakeup
        self.leases = leases
        var logger = logger
        logger[metadataKey: "projection"] = "\(unit.projection.name)"
        if let partition = unit.partition { logger[metadataKey: "partition"] = "\(partition)" }
        self.logger = logger
        self.checkpoints = CheckpointStore(schema: options.schema, instanceID: options.instanceID)
        self.resolver = GapResolver(events: options.schema.eventsTable)
        self.reader = BatchReader(unit: unit, options: options)
        self.metrics = UnitMetrics(unit: unit)
        self.deadLetters = DeadLetterStore(schema: options.schema)
        leases.register(unit.name, wakeup: wakeup)
    }

    /// The unit's name: its checkpoint row and its lease.
    var name: String { self.unit.name }
    var status: ProjectionStatus { self.board.status(self.name) ?? ProjectionStatus(name: self.name) }

    /// What the driver holds between actions: data, no decisions and no connection.
    struct Session {
        /// The batch read ahead during catch-up (on a second, borrowed connection).
        var readAhead: Batch?
        /// Positions the next scoped read scans (adapts to the scope's share of the log).
        var scan: Int?
        /// The transactions that may still own the gap waited on.
        var gapHolders: [GapResolver.Holder] = []
        /// The fencing token of the lease this runner last worked under; nil before the first.
        var token: Int64?
        /// Events applied per second lately (for `status`'s rate and ETA).
        var rate = RateMeter()
        /// Whether this run created its checkpoint row if missing (once, at start: a row that
        /// goes later was deleted on purpose and is never recreated).
        var rowEnsured = false
        /// The checkpoint the last batch committed (nil before the first, and after a failure):
        /// where the unit asks the shared reader for rows before its next transaction.
        var knownCheckpoint: Int64?
        /// Whether the next transaction takes its batches from the shared window.
        var sharing = false
        /// Whether, since the lease was lost, the checkpoint row was checked for existence.
        var lossChecked = false
        /// When `retry_parked` next looks for parked aggregates due (nil: at the next batch).
        var nextParkedRetry: ContinuousClock.Instant?
    }

    /// Why the run ended.
    enum Ending {
        case shutdown
        case retired
        /// The checkpoint row was deleted: the unit shows `failed` with this error.
        case deleted(String)
    }

    /// Runs until the task is cancelled; then the owner records the state `stopped`.
    public func run() async {
        var machine = RunnerStateMachine(options: self.options, onError: self.projection.onError)
        var session = Session()
        self.board.update(self.name) { $0.state = .catchingUp }
        var action = machine.start()
        var ending = Ending.shutdown
        while true {
            if Task.isCancelled, !action.isStop { action = machine.cancelled() }
            if case .stop(let record) = action {
                await self.stop(record: record, ending: ending, &session)
                return
            }
            do {
                action = try await self.perform(action, &machine, &session)
            } catch {
                let failure = RunnerFailure.classify(error, cancelled: Task.isCancelled, redacting: self.projection.redactsErrors)
                if failure == .fenced, let token = session.token {
                    // The coordinator learns it at its next renewal; until then, stop using the stale lease.
                    self.leases.drop(self.name, token: token)
                }
                if failure == .retired {
                    ending = .retired
                    self.logger.info("Retired: a successor took over the published views; this version stops.", metadata: ["reason": "\(error)"])
                }
                if case .deleted(let message) = failure {
                    ending = .deleted(message)
                    self.logger.error("Checkpoint row deleted; this unit stops.", metadata: ["unit": "\(self.name)", "error": "\(message)"])
                }
                action = machine.failed(failure, now: .now)
            }
        }
    }

    /// Performs one action and returns the machine's answer to what happened.
    private func perform(_ action: RunnerStateMachine.Action, _ machine: inout RunnerStateMachine, _ session: inout Session)
        async throws -> RunnerStateMachine.Action
    {
        if let sharedLog = self.sharedLog, action.leavesSharedWindow {
            await sharedLog.leave(self.name)
            session.knownCheckpoint = nil
            session.sharing = false
        }
        switch action {
        case .connect:
            // The server answers; the checkpoint row is created if missing, once per run.
            try await self.borrow { connection in
                if !session.rowEnsured {
                    try await self.checkpoints.ensureRow(self.name, on: connection)
                    session.rowEnsured = true
                    // Where the first transaction will start: it may take from the shared window already.
                    if self.sharedLog != nil { session.knownCheckpoint = try await self.checkpoints.position(self.name, on: connection) }
                }
            }
            return machine.connected(now: .now)

        case .runBatch(let plan):
            guard self.leases.token(for: self.name) != nil else {
                // A lease lost because its row went with the checkpoint row (`reset` into another
                // partition layout, `drop`): the unit stops, as it would at its next batch.
                if session.token != nil, !session.lossChecked {
                    session.lossChecked = true
                    if try await self.borrow({ try await self.checkpoints.position(self.name, on: $0) }) == nil {
                        throw CheckpointDeletedError(unit: self.name)
                    }
                }
                // Another instance runs the unit.
                session.readAhead = nil
                self.board.update(self.name) { $0.state = .standby; $0.busySince = nil }
                // It keeps its known checkpoint: whoever runs the unit meanwhile only moves it
                // forward, and the transaction takes from the window after the checkpoint it locks.
                await self.sharedLog?.leave(self.name)
                return machine.notOwner(now: .now)
            }
            // Between batches, with the lease: parked aggregates whose retry is due (`retry_parked`).
            await self.retryParkedIfDue(&session)
            // Before borrowing a connection: the shared reader brings the rows after the
            // checkpoint into the window (or says the unit reads its own range).
            if let sharedLog = self.sharedLog, let known = session.knownCheckpoint {
                session.sharing = try await sharedLog.prepare(self.name, after: known)
                // The read it waited for does not end with the task: a shutdown meanwhile stops
                // the runner as the owner it is (the leases may be released already).
                try Task.checkCancellation()
            } else {
                session.sharing = false
            }
            session.lossChecked = false
            // One borrow from the fencing step to the commit (or rollback).
            return try await self.borrow(preparing: true) { connection in
                guard let token = try await self.leaseToken(&session, on: connection) else {
                    return machine.notOwner(now: .now)
                }
                machine.batchStarting()
                let started = ContinuousClock.now
                do {
                    let summary = try await self.busy { try await self.runBatch(plan, token: token, on: connection, &session) }
                    self.metrics.recordBatch(ContinuousClock.now - started)
                    return machine.batchCommitted(summary, now: .now)
                } catch let failure as BatchFailure {
                    self.metrics.recordHandlerError()
                    return machine.batchFailed(failure, now: .now)
                }
            }

        case .wait(let wait):
            if wait.closeReader { session.readAhead = nil }
            if wait.recordStateFirst, machine.owned, let token = session.token {
                try await self.borrow { try await self.recordState(token: token, on: $0) }
                machine.stateRecorded(now: .now)
            }
            let woken = await self.pause(until: wait.until)
            return machine.waited(woken: woken, now: .now)

        case .probeGap, .recheckGap, .findVisible:
            return try await self.performGap(action, &machine, &session)

        case .isolate(let failure):
            let token = try self.heldToken(session)
            let result = try await self.borrow(preparing: true) { connection in
                try await self.busy { try await self.isolate(failure, token: token, on: connection) }
            }
            return machine.isolated(result, now: .now)

        case .retryEvent(let event, let delay):
            self.logger.warning(
                "Handler failed; retrying the event.",
                metadata: ["position": "\(event.globalPosition)", "retry.in": "\(delay)"])
            try await Task.sleep(for: delay)
            let token = try self.heldToken(session)
            let result = try await self.borrow(preparing: true) { connection in
                try await self.busy { try await self.retry(event, token: token, on: connection) }
            }
            if case .failed = result { self.metrics.recordHandlerError() }
            return machine.retried(result, now: .now)

        case .deadLetter(let event, let error):
            let token = try self.heldToken(session)
            try await self.borrow { connection in
                try await self.busy { try await self.deadLetter(event, error, token: token, on: connection) }
            }
            self.metrics.recordDeadLetter()
            return machine.deadLettered(now: .now)

        case .halt(let event, let error):
            let token = try self.heldToken(session)
            try await self.borrow { try await self.halt(event, error, token: token, on: $0) }
            return machine.halted(event, now: .now)

        case .checkHalted(let delay, let recordStateFirst):
            if recordStateFirst, let token = session.token {
                try await self.borrow { try await self.recordState(token: token, on: $0) }
                machine.stateRecorded(now: .now)
            }
            _ = await self.pause(until: .now + delay)
            try Task.checkCancellation()
            let position = try await self.borrow { try await self.checkpoints.position(self.name, on: $0) }
            return machine.haltChecked(position: position, now: .now)

        case .reconnect(let reconnect):
            // A broken connection was discarded by the pool when it came back.
            self.metrics.recordReconnect()
            session.readAhead = nil
            self.board.update(self.name) { status in
                if reconnect.failed != nil { status.state = .failed }
                status.lastError = reconnect.message
            }
            if let failed = reconnect.failed {
                self.logger.error("Projection failed; retrying later.", metadata: ["error": "\(failed)", "retry.in": "\(reconnect.after)"])
                // The owner records it, also one that never committed (its first batch, or its SQL
                // could not be prepared): this instance owns the unit while it holds the lease.
                if let token = self.leases.token(for: self.name) ?? (machine.owned ? session.token : nil) {
                    await self.recordFailure(token: token)
                }
            } else {
                self.logger.warning(
                    "Transient database error; retrying.", metadata: ["error": "\(reconnect.message)", "retry.in": "\(reconnect.after)"])
            }
            _ = await self.pause(until: .now + reconnect.after)
            return machine.waited(woken: false, now: .now)

        case .stop:
            return action
        }
    }

    // MARK: - Liveness

    /// Runs server work with the runner marked busy: a runner waiting on the server is alive
    /// (the watchdog keeps being fed), and one busy longer than `slow_batch_warn` is reported.
    func busy<T>(_ body: () async throws -> T) async throws -> T {
        self.board.update(self.name) { $0.busySince = .now }
        defer { self.board.update(self.name) { $0.busySince = nil } }
        return try await body()
    }

    /// Waits until `deadline` or a wake-up, beating at least every `beatInterval` meanwhile.
    /// - Returns: true when woken.
    func pause(until deadline: ContinuousClock.Instant) async -> Bool {
        while !Task.isCancelled {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return false }
            if await self.wakeup.wait(timeout: min(remaining, self.options.beatInterval)) { return true }
            self.board.update(self.name) { _ in }
        }
        return false
    }
}

extension RunnerStateMachine.Action {
    var isStop: Bool {
        if case .stop = self { return true }
        return false
    }

    /// Whether the unit stops taking from the shared window when it performs this action (it is
    /// failing, parked, backing off or stopping; a unit waiting at a gap or idle stays).
    var leavesSharedWindow: Bool {
        switch self {
        case .isolate, .retryEvent, .deadLetter, .halt, .checkHalted, .reconnect, .stop: true
        case .connect, .runBatch, .wait, .probeGap, .recheckGap, .findVisible: false
        }
    }
}
