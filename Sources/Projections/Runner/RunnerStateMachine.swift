import EventStore

/// The decisions of one projection's runner, apart from any I/O.
///
/// A pure value in the manner of postgres-nio's connection state machines: the driver
/// (`ProjectionRunner`) reports what happened — a batch committed or failed, a gap probe's
/// answer, a wake-up, a tick of the clock — and gets back the one action to perform next.
/// Time arrives as an argument, so every transition is tested without a server or a sleep.
struct RunnerStateMachine {
    let options: RuntimeOptions
    let onError: OnError
    private(set) var state: State = .initial
    /// Positions known dead; what lies at or below the checkpoint is forgotten.
    private(set) var dead = DeadPositions()
    private(set) var checkpoint: Int64 = 0
    /// Whether this runner's session owns the projection (only the owner writes its state).
    private(set) var owned = false
    /// Whether this runner worked under a lease that no other instance is known to have taken
    /// since: a lease that lapsed (renewals late, the runner stood by) may still be the newest,
    /// and then the runner's `stopped` is the unit's last word (the write is fenced in SQL by
    /// the lease's token, so a successor's state is never overwritten).
    private(set) var lastOwner = false
    private(set) var connected = false
    /// After a failure in a multi-batch transaction: one batch per transaction up to here.
    private(set) var singleBatchUntil: Int64?
    /// After a failure outside a handler (a lost connection, a deadlock): one batch per
    /// transaction and no read-ahead for this many commits, so that under repeated failures the
    /// smallest unit of work still gets through, and a large transaction is tried only once
    /// several small ones went through.
    private(set) var recoveringCommits = 0
    static let recoveryCommits = 8
    var recovering: Bool { self.recoveringCommits > 0 }
    /// The events a batch applies at most now (see `BatchPlan.batchSize`).
    private(set) var batchSize: Int
    /// No read-ahead before this instant (after the read-ahead connection failed).
    private(set) var readAheadResumes: ContinuousClock.Instant?
    private(set) var pollDelay: Duration
    private(set) var reconnectBackoff: Backoff
    private var readAheadBackoff: Backoff
    private(set) var lastPersisted: ContinuousClock.Instant?

    init(options: RuntimeOptions, onError: OnError) {
        self.options = options
        self.onError = onError
        self.pollDelay = options.pollInterval
        self.batchSize = max(1, options.batchSize)
        self.reconnectBackoff = options.reconnectBackoff
        self.readAheadBackoff = options.reconnectBackoff
    }

    // MARK: - Start, connection, ownership

    mutating func start() -> Action {
        self.state = .connecting
        return .connect
    }

    /// A new connection is open: the server is up, so the reconnect delays start over (a
    /// transaction cut short again backs off from the first delay, not from where the failed
    /// connection attempts left it).
    mutating func connected(now: ContinuousClock.Instant) -> Action {
        self.connected = true
        self.reconnectBackoff.reset()
        return self.nextBatch(now: now)
    }

    /// This instance holds no lease on the unit (or was fenced off): wait as a standby and
    /// check again (the coordinator wakes the runner when it gains the unit).
    mutating func notOwner(now: ContinuousClock.Instant) -> Action {
        self.owned = false
        self.state = .standby
        let recheck = min(self.options.pollInterval, .seconds(1))
        return .wait(Wait(until: now + recheck, recordStateFirst: false, closeReader: true, standby: true))
    }

    // MARK: - Batches

    /// A batch begins under this instance's lease: the runner owns the unit from here on (until
    /// fenced off), so a shutdown, even before its first commit, records `stopped`.
    mutating func batchStarting() {
        self.owned = true
        self.lastOwner = true
    }

    /// The batch transaction committed.
    mutating func batchCommitted(_ summary: BatchSummary, now: ContinuousClock.Instant) -> Action {
        self.owned = true
        self.lastOwner = true
        self.reconnectBackoff.reset()
        self.recoveringCommits = max(0, self.recoveringCommits - 1)
        self.batchSize = min(max(1, self.options.batchSize), self.batchSize * 2)
        self.checkpoint = summary.checkpoint
        self.dead.forget(below: summary.checkpoint + 1)
        if summary.persisted { self.lastPersisted = now }
        if let until = self.singleBatchUntil, summary.checkpoint >= until { self.singleBatchUntil = nil }
        if summary.readAheadFailed {
            self.readAheadResumes = now + self.readAheadBackoff.next()
        } else if summary.readAhead {
            self.readAheadBackoff.reset()
        }
        switch summary.outcome {
        case .progressed:
            self.pollDelay = self.options.pollInterval
            return self.nextBatch(now: now, catchingUp: summary.readAhead || summary.full)
        case .idle:
            let deadline = now + self.pollDelay
            self.state = .idle(pollDeadline: deadline)
            return .wait(self.idleWait(now: now, deadline: deadline, closeReader: true))
        case .blocked(let unresolved):
            self.state = .gap(Gap(unresolved: unresolved, started: now))
            return .probeGap(unresolved)
        }
    }

    /// A handler failed in the batch; the transaction rolled back.
    mutating func batchFailed(_ failure: BatchFailure, now: ContinuousClock.Instant) -> Action {
        self.owned = true
        self.lastOwner = true
        self.singleBatchUntil = failure.events.last?.globalPosition ?? failure.frontier.position
        guard failure.checkpoint == failure.transactionStart else {
            // Batches before the failing one were rolled back with it: redo them one per transaction.
            return self.nextBatch(now: now, catchingUp: false)
        }
        self.state = .isolating
        return .isolate(failure)
    }

    /// Any error outside a handler's verdict on an event (connection loss, our own SQL, shutdown).
    mutating func failed(_ failure: RunnerFailure, now: ContinuousClock.Instant) -> Action {
        switch failure {
        case .cancelled:
            return self.cancelled()
        case .fenced:
            // Another instance took the unit over: nothing of ours committed; stand by.
            self.lastOwner = false
            return self.notOwner(now: now)
        case .retired:
            // A successor serves the views now: this version's work is done.
            self.state = .stopped
            return .stop(recordState: false)
        case .deleted:
            // The row went (reset into another layout, drop): recreating it would re-apply every
            // event into a read model just truncated. Stop the unit; there is no row to record in.
            self.owned = false
            self.lastOwner = false
            self.state = .stopped
            return .stop(recordState: false)
        case .transient(let message, let lost), .permanent(let message, let lost):
            let transient = failure.isTransient
            // The lease outlives a lost connection (it is a row, renewed by the coordinator):
            // the runner still owns the unit, and its writes stay fenced by the lease's token.
            if lost { self.connected = false }
            self.recoveringCommits = Self.recoveryCommits
            self.batchSize = max(max(1, self.options.batchSize / 16), self.batchSize / 2)
            self.state = .backingOff
            let delay = transient ? self.reconnectBackoff.next() : self.longestDelay()
            return .reconnect(
                Reconnect(after: delay, closeConnection: lost, failed: transient ? nil : message, message: message))
        case .handler(let message):
            // A handler error outside a batch (e.g. in `prepare`): the projection cannot run.
            self.state = .backingOff
            return .reconnect(
                Reconnect(after: self.longestDelay(), closeConnection: false, failed: message, message: message))
        }
    }

    // MARK: - Waiting

    /// A wait ended: woken by a notification, or its deadline passed.
    mutating func waited(woken: Bool, now: ContinuousClock.Instant) -> Action {
        switch self.state {
        case .idle(let deadline):
            if woken || now >= deadline {
                self.pollDelay = woken ? self.options.pollInterval : min(self.pollDelay * 2, self.options.maxPollInterval)
                return self.nextBatch(now: now)
            }
            return .wait(self.idleWait(now: now, deadline: deadline, closeReader: false))
        case .backingOff:
            return self.connected ? self.nextBatch(now: now) : self.reconnectNow()
        case .standby:
            return self.connected ? self.nextBatch(now: now) : self.reconnectNow()
        default:
            return self.nextBatch(now: now)
        }
    }

    /// The checkpoint row's state columns were written (outside a batch).
    mutating func stateRecorded(now: ContinuousClock.Instant) {
        self.lastPersisted = now
    }

    // MARK: - Gaps

    /// The transactions that may own the missing positions, as found by the first probe.
    mutating func gapHolders(_ count: Int, now: ContinuousClock.Instant) -> Action {
        guard case .gap(let gap) = self.state else { return self.invalid(now: now) }
        if count == 0 { return .findVisible(gap.unresolved) }
        return self.recheck(gap, now: now)
    }

    /// A re-check: how many of the possible owners still run, and whether the first missing
    /// position became visible (its owner committed).
    mutating func gapRechecked(remaining: Int, visible: Bool, now: ContinuousClock.Instant) -> Action {
        guard case .gap(let gap) = self.state else { return self.invalid(now: now) }
        if visible { return self.nextBatch(now: now) }
        if remaining == 0 { return .findVisible(gap.unresolved) }
        if self.skippingGap(now: now) {
            for range in gap.unresolved { self.dead.insert(range, reason: .timeout) }
            return self.nextBatch(now: now)
        }
        return self.recheck(gap, now: now)
    }

    /// Every possible owner has ended; these positions of the unresolved ranges are visible,
    /// the rest are dead.
    mutating func gapVisible(_ visible: Set<Int64>, now: ContinuousClock.Instant) -> Action {
        guard case .gap(let gap) = self.state else { return self.invalid(now: now) }
        // O(ranges + visible positions), whatever the ranges' lengths (a sequence moved by millions).
        let sorted = visible.sorted()
        for range in gap.unresolved {
            var low = range.lowerBound
            var index = Self.firstIndex(in: sorted, atLeast: range.lowerBound)
            while index < sorted.count, sorted[index] <= range.upperBound {
                let position = sorted[index]
                if position > low { self.dead.insert(low...(position - 1), reason: .aborted) }
                low = position + 1
                index += 1
            }
            if low <= range.upperBound { self.dead.insert(low...range.upperBound, reason: .aborted) }
        }
        return self.nextBatch(now: now)
    }

    /// Whether the gap wait passed `gap_skip_after` (the driver logs the skip).
    func skippingGap(now: ContinuousClock.Instant) -> Bool {
        guard case .gap(let gap) = self.state, let skipAfter = self.options.gapSkipAfter else { return false }
        return now - gap.started >= skipAfter
    }

    private mutating func recheck(_ gap: Gap, now: ContinuousClock.Instant) -> Action {
        var gap = gap
        let waited = now - gap.started
        let warn = !gap.warned && waited >= self.options.gapWarnAfter
        gap.warned = gap.warned || warn
        let record = (!gap.recorded && waited >= .milliseconds(500)) || self.heartbeatDue(now)
        gap.recorded = gap.recorded || record
        self.state = .gap(gap)
        return .recheckGap(
            GapRecheck(
                after: self.options.gapRecheckInterval, first: gap.unresolved[0].lowerBound, waited: waited, warn: warn,
                recordStateFirst: record))
    }

    // MARK: - Handler failures

    mutating func isolated(_ result: IsolationResult, now: ContinuousClock.Instant) -> Action {
        switch result {
        case .passed, .moved:
            return self.nextBatch(now: now)
        case .failing(let event, _):
            self.checkpoint = event.globalPosition - 1
            var backoff = Backoff(
                initial: self.options.handlerRetryDelay, maximum: max(self.options.handlerRetryDelay, self.options.maxReconnectDelay),
                jitter: 1...1)
            let delay = backoff.next()
            self.state = .retrying(Retrying(event: event, attempt: 1, backoff: backoff))
            return .retryEvent(event, after: delay)
        }
    }

    mutating func retried(_ result: RetryResult, now: ContinuousClock.Instant) -> Action {
        guard case .retrying(var retrying) = self.state else { return self.invalid(now: now) }
        switch result {
        case .applied, .moved:
            return self.nextBatch(now: now)
        case .failed(let error):
            if retrying.attempt < max(1, self.options.handlerRetries) {
                retrying.attempt += 1
                let delay = retrying.backoff.next()
                self.state = .retrying(retrying)
                return .retryEvent(retrying.event, after: delay)
            }
            switch self.onError {
            case .skip, .park:
                return .deadLetter(retrying.event, error)
            case .stop:
                return .halt(retrying.event, error)
            }
        }
    }

    mutating func deadLettered(now: ContinuousClock.Instant) -> Action {
        self.nextBatch(now: now)
    }

    /// The state `failed` is recorded: stay at the event until the checkpoint moves (a reset) or
    /// the longest backoff has passed (then the event is tried again).
    mutating func halted(_ event: PersistedEvent, now: ContinuousClock.Instant) -> Action {
        self.lastPersisted = now
        self.checkpoint = event.globalPosition - 1
        self.state = .halted(Halted(event: event, until: now + self.options.maxReconnectDelay))
        return .checkHalted(after: self.options.pollInterval, recordStateFirst: false)
    }

    /// The checkpoint as read while halted (`on_error: stop`).
    mutating func haltChecked(position: Int64?, now: ContinuousClock.Instant) -> Action {
        guard case .halted(let halted) = self.state else { return self.invalid(now: now) }
        if position != halted.event.globalPosition - 1 { return self.resetObserved(to: position ?? 0, now: now) }
        if now >= halted.until { return self.nextBatch(now: now) }
        return .checkHalted(after: min(self.options.pollInterval, halted.until - now), recordStateFirst: self.heartbeatDue(now))
    }

    /// The checkpoint moved under us (`reset`): carry on from there.
    mutating func resetObserved(to position: Int64, now: ContinuousClock.Instant) -> Action {
        self.checkpoint = position
        self.singleBatchUntil = nil
        return self.nextBatch(now: now)
    }

    // MARK: - Stop

    /// Stops; the owner records `stopped` (on a connection of its own, fenced by its token),
    /// whether or not its last connection was lost, and so does a runner whose lease lapsed
    /// while no other instance took it (`lastOwner`).
    mutating func cancelled() -> Action {
        let record = self.owned || self.lastOwner
        self.state = .stopped
        return .stop(recordState: record)
    }

    // MARK: - Helpers

    /// The index of the first of `sorted` at or above `value` (binary search).
    static func firstIndex(in sorted: [Int64], atLeast value: Int64) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Whether the runner is catching up: running, after a batch that read ahead or came back full.
    var catchingUp: Bool {
        guard case .running(let catchingUp) = self.state else { return false }
        return catchingUp
    }

    /// The next batch; `catchingUp` nil keeps what the state says (false from any other state
    /// than `running`).
    private mutating func nextBatch(now: ContinuousClock.Instant, catchingUp: Bool? = nil) -> Action {
        guard self.connected else { return self.reconnectNow() }
        let catchingUp = catchingUp ?? self.catchingUp
        self.state = .running(catchingUp: catchingUp)
        return .runBatch(
            BatchPlan(
                maxBatches: self.singleBatchUntil == nil && !self.recovering ? max(1, self.options.batchesPerTransaction) : 1,
                batchSize: self.batchSize,
                readAhead: catchingUp && self.singleBatchUntil == nil && !self.recovering && self.readAheadAllowed(now),
                dead: self.dead))
    }

    /// An event the driver cannot report in this state (a gap probe's answer outside a gap, a
    /// retry's result outside a retry): a driver bug. Loud in debug builds (tests); a release
    /// build goes on with the next batch, which re-reads everything from the checkpoint.
    private mutating func invalid(now: ContinuousClock.Instant, function: StaticString = #function) -> Action {
        assertionFailure("Invalid state \(self.state) for \(function)")
        return self.nextBatch(now: now, catchingUp: false)
    }

    private func readAheadAllowed(_ now: ContinuousClock.Instant) -> Bool {
        guard let resumes = self.readAheadResumes else { return true }
        return now >= resumes
    }

    /// The wait after a permanent failure: the longest reconnect delay, jittered.
    private func longestDelay() -> Duration {
        var backoff = Backoff(initial: self.reconnectBackoff.maximum, maximum: self.reconnectBackoff.maximum)
        return backoff.next()
    }

    private mutating func reconnectNow() -> Action {
        self.state = .connecting
        return .connect
    }

    private func heartbeatDue(_ now: ContinuousClock.Instant) -> Bool {
        guard let last = self.lastPersisted else { return true }
        return now - last >= self.options.heartbeatInterval
    }

    private func idleWait(now: ContinuousClock.Instant, deadline: ContinuousClock.Instant, closeReader: Bool) -> Wait {
        let due = self.heartbeatDue(now)
        let nextHeartbeat = (due ? now : self.lastPersisted!) + self.options.heartbeatInterval
        return Wait(until: min(deadline, nextHeartbeat), recordStateFirst: due, closeReader: closeReader, standby: false)
    }
}
