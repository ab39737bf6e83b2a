import EventStore
import Postgres

/// The values a batch transaction hands between its steps: one batch's work, a pipeline in
/// flight, the statements built per event, and who a failed COMMIT is blamed on.
extension ProjectionRunner {
    /// One batch's share of the transaction: its events and what progress it records.
    struct BatchWork {
        var events: [PersistedEvent]
        /// Per event, statements built ahead (read-ahead batches of a `StatementProjection`).
        var statements: [StatementList]?
        var checkpoint: Int64
        var frontier: Frontier
        var highestVisible: Int64
        /// The lease's fencing token the checkpoint moves under.
        var token: Int64
        /// The state to record with the checkpoint; nil when the checkpoint did not move.
        var status: ProjectionStatus?
        /// The checkpoint the transaction started from.
        var transactionStart: Int64
        /// Events of parked aggregates: their dead letters go with the checkpoint.
        var parked: [PersistedEvent] = []
        var parkedSet = ParkedAggregates()

        func failure(_ error: HandlerError) -> BatchFailure {
            BatchFailure(
                events: self.events, checkpoint: self.checkpoint, transactionStart: self.checkpoint, frontier: self.frontier,
                highestVisible: self.highestVisible, error: error, parked: self.parked, parkedSet: self.parkedSet)
        }
    }

    /// A COMMIT the server refused (it rolled back) for a reason in the data: a deferred
    /// constraint or constraint trigger. Isolation then finds the event (it checks each event's
    /// deferred constraints before going on). Nil for a lost connection (whether it committed is
    /// unknown), a transient error (retried as is), or shutdown.
    static func commitFailure(_ error: PostgresError, of work: BatchWork, cancelled: Bool) -> BatchFailure? {
        guard !cancelled, error.sqlState != nil, !error.isConnectionLost, !error.isTransient, error.sqlState != "55P03", let last = work.events.last else { return nil }
        var failure = work.failure(HandlerError(event: last, error: error))
        failure.transactionStart = work.transactionStart
        return failure
    }

    /// A batch's pipeline that was sent and whose results were not read yet.
    struct SentBatch {
        var ticket: PipelineTicket
        var work: BatchWork
        /// For each statement, the index of the event it belongs to.
        var owners: [Int]
    }

    typealias StatementList = Result<[ProjectionStatement], HandlerError>

    static func statements(of projection: any StatementProjection, for event: PersistedEvent) -> StatementList {
        Result { try projection.statements(for: event) }.mapError { HandlerError(event: event, error: $0) }
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
