import EventStore

/// What the state machine asks of the driver, and the states it moves between.
extension RunnerStateMachine {
    /// The next thing the driver does.
    enum Action: Sendable {
        /// Borrow a connection once (the server answers) and create the checkpoint row if this
        /// run has not yet, then report `connected` or `failed`.
        case connect
        /// Check ownership, then run one batch transaction; report `batchCommitted`,
        /// `batchFailed`, `notOwner` or `failed`.
        case runBatch(BatchPlan)
        /// Wait until `until` or a wake-up, then report `waited`.
        case wait(Wait)
        /// Read who may still own the missing positions; report `gapHolders`.
        case probeGap([ClosedRange<Int64>])
        /// Sleep `after`, re-check the holders; report `gapRechecked`.
        case recheckGap(GapRecheck)
        /// Every possible owner ended: read which positions became visible; report `gapVisible`.
        case findVisible([ClosedRange<Int64>])
        /// Re-run the failed batch event by event, commit the good prefix; report `isolated`.
        case isolate(BatchFailure)
        /// Wait `after`, apply the single event alone; report `retried`.
        case retryEvent(PersistedEvent, after: Duration)
        /// `on_error: skip` or `park`: write the dead letter (status `skipped`, or `parked` with the
        /// event's aggregate parked from it on) and pass the event; report `deadLettered`.
        case deadLetter(PersistedEvent, HandlerError)
        /// `on_error: stop`: record the state `failed` at the event; report `halted`.
        case halt(PersistedEvent, HandlerError)
        /// Wait `after`, read the checkpoint; report `haltChecked`.
        case checkHalted(after: Duration, recordStateFirst: Bool)
        /// Wait `after` (a lost connection was already discarded by the pool), then report `waited`.
        case reconnect(Reconnect)
        /// Record the final state (only when this runner owns the projection) and end.
        case stop(recordState: Bool)
    }

    struct BatchPlan: Sendable, Equatable {
        /// Batches one transaction may carry.
        var maxBatches: Int
        /// Events one batch applies at most: `batchSize`, halved after each failure outside a
        /// handler (down to a sixteenth) and doubled back after each commit, so that work still
        /// gets through when transactions keep being cut short.
        var batchSize: Int
        /// Whether a second connection may read the next batch ahead (when the pool has one free).
        var readAhead: Bool
        /// Positions known never to appear (passed over and audited).
        var dead: DeadPositions
    }

    struct Wait: Sendable, Equatable {
        var until: ContinuousClock.Instant
        /// Refresh the checkpoint row's state columns before waiting (the heartbeat).
        var recordStateFirst: Bool
        /// Drop the batch read ahead (nothing to read ahead while waiting).
        var closeReader: Bool
        /// Waiting as a standby (another instance owns the projection).
        var standby: Bool
    }

    struct GapRecheck: Sendable, Equatable {
        var after: Duration
        var first: Int64
        var waited: Duration
        /// Log the warning that the gap has been waited on for `gap_warn_after` (once per gap).
        var warn: Bool
        var recordStateFirst: Bool
    }

    struct Reconnect: Sendable, Equatable {
        var after: Duration
        /// The connection was lost: the next step borrows again (`connect`).
        var closeConnection: Bool
        /// The error, when it is not transient: record the state `failed` with it.
        var failed: String?
        var message: String
    }

    enum State: Sendable {
        case initial
        case connecting
        /// Connected; the next step is a batch. `catchingUp`: the last batch read ahead or came
        /// back full, so the next one reads ahead too.
        case running(catchingUp: Bool)
        case idle(pollDeadline: ContinuousClock.Instant)
        case standby
        case gap(Gap)
        case isolating
        case retrying(Retrying)
        case halted(Halted)
        case backingOff
        case stopped
    }

    struct Gap: Sendable {
        var unresolved: [ClosedRange<Int64>]
        var started: ContinuousClock.Instant
        var warned = false
        var recorded = false
    }

    struct Retrying: Sendable {
        var event: PersistedEvent
        var attempt: Int
        var backoff: Backoff
    }

    struct Halted: Sendable {
        var event: PersistedEvent
        var until: ContinuousClock.Instant
    }
}
