import EventStore

/// A handler failed inside a batch transaction, which was rolled back.
struct BatchFailure: Error, Sendable {
    /// The in-scope events of the batch that failed, in order.
    var events: [PersistedEvent]
    /// The checkpoint that batch was read after.
    var checkpoint: Int64
    /// The checkpoint the transaction started from (earlier when several batches shared it).
    var transactionStart: Int64
    /// How far the failed batch would have moved the checkpoint.
    var frontier: Frontier
    var highestVisible: Int64
    var error: HandlerError
    /// The batch's events held back because their aggregate is parked, in order (not in `events`).
    var parked: [PersistedEvent] = []
    /// The parked set the batch was split by: an isolation under another version starts over.
    var parkedSet = ParkedAggregates()
}

/// What isolating a failed batch found, having committed every event before the failing one.
enum IsolationResult: Sendable {
    /// This event still fails; the checkpoint now sits just before it.
    case failing(PersistedEvent, HandlerError)
    /// Every event applied one by one (the failure did not recur); the batch is committed.
    case passed
    /// The checkpoint was no longer where the batch started (a reset moved it).
    case moved
}

/// What one retry of a single failing event did.
enum RetryResult: Sendable {
    case applied
    /// The checkpoint is no longer just before the event (a reset moved it).
    case moved
    case failed(HandlerError)
}
