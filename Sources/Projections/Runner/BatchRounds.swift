/// The decisions of one batch transaction's rounds, apart from any I/O: where each round's
/// batch comes from, whether the next one is read ahead meanwhile, and whether another round
/// follows before the commit. `BatchTransaction.swift` performs them.
struct BatchRounds: Sendable {
    let plan: RunnerStateMachine.BatchPlan
    /// How long the transaction may go on adding rounds.
    let budget: Duration
    let started: ContinuousClock.Instant
    /// Whether the unit takes its batches from the shared window this transaction.
    let sharing: Bool
    /// The round under way, from 1.
    private(set) var round = 1

    init(plan: RunnerStateMachine.BatchPlan, budget: Duration, sharing: Bool, started: ContinuousClock.Instant) {
        self.plan = plan
        self.budget = budget
        self.sharing = sharing
        self.started = started
    }

    enum Source: Equatable {
        /// The batch read ahead after exactly this checkpoint.
        case readAhead
        /// The shared window (it may not cover the checkpoint: then `read`).
        case window
        /// A read in the transaction.
        case read
    }

    var maxRounds: Int { max(1, self.plan.maxBatches) }

    /// Where the round's batch after `checkpoint` comes from.
    func source(after checkpoint: Int64, readAheadAfter: Int64?) -> Source {
        if readAheadAfter == checkpoint { return .readAhead }
        return self.sharing ? .window : .read
    }

    /// Whether the read-ahead connection opens for this transaction (not while sharing: the
    /// shared reader reads ahead for everyone).
    func opensReader(holdingReadAhead: Bool) -> Bool {
        !self.sharing && (self.plan.readAhead || holdingReadAhead)
    }

    /// Whether to read the next batch ahead while this round's applies.
    func readsAhead(readerUsable: Bool, full: Bool, blocked: Bool) -> Bool {
        readerUsable && full && !blocked && self.round < self.maxRounds
    }

    /// After a round: whether another follows in this transaction. It does while a batch is
    /// ready without waiting (read ahead, or rows in the shared window after a full batch), the
    /// plan allows more rounds and the time budget is not spent.
    mutating func another(readAheadReady: Bool, windowHasRows: Bool, full: Bool, blocked: Bool, now: ContinuousClock.Instant) -> Bool {
        let ready = readAheadReady || (self.sharing && full && !blocked && windowHasRows)
        guard ready, self.round < self.maxRounds, now - self.started < self.budget else { return false }
        self.round += 1
        return true
    }
}
