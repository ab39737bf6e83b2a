import Postgres

/// An error the runner met, sorted by what it calls for.
///
/// - `transient`: retry the same work after a backoff, never blame the event: connection loss,
///   serialization failure `40001`, deadlock `40P01`, insufficient resources (class 53), and
///   `lock_timeout` (`55P03`: another transaction holds a lock the handler needs; it will end).
///   Also when a handler wrapped such an error in `HandlerError`.
/// - `handler`: the event's handler failed: isolate it, retry it, then follow `on_error`.
///   A `statement_timeout` cancellation (`57014`) belongs here: a statement that exceeds the
///   timeout on every retry is a property of the event and the read model, and retrying it for
///   ever would stall the projection silently.
/// - `permanent`: the runner's own statements failed for a reason a retry will not fix soon
///   (a dropped table, a missing row): mark the projection failed, retry after the longest delay.
/// - `fenced`: another instance owns the unit now (`FencedError`): stand by.
/// - `retired`: a successor took the projection's views over (`RetiredError`): stop.
/// - `deleted`: the unit's checkpoint row is gone (`CheckpointDeletedError`: `reset` into
///   another layout, `drop`): stop the unit, never recreate the row.
/// - `cancelled`: the runner's task was cancelled (shutdown).
enum RunnerFailure: Equatable, Sendable {
    case transient(message: String, connectionLost: Bool)
    case handler(message: String)
    case permanent(message: String, connectionLost: Bool)
    case fenced
    case retired
    case deleted(message: String)
    case cancelled

    /// Sorts `error`; `cancelled` tells whether the runner's task was cancelled (our own
    /// cancellation reaches us as `57014` or a closed connection, and is no failure).
    /// `redacting`: the message leaves out what a database or handler error may quote of an
    /// event's values (`ErrorRedaction`), for a projection that `redactsErrors`.
    static func classify(_ error: any Error, cancelled: Bool, redacting: Bool = false) -> RunnerFailure {
        if cancelled || error is CancellationError { return .cancelled }
        if error is FencedError { return .fenced }
        if error is RetiredError { return .retired }
        if let deleted = error as? CheckpointDeletedError { return .deleted(message: deleted.description) }
        let handler = error as? HandlerError
        let postgres = (error as? PostgresError) ?? handler?.postgres
        let message =
            if !redacting { "\(error)" }
            else if let handler { handler.redacted().description }
            else if let postgres = error as? PostgresError { ErrorRedaction.text(of: postgres) }
            else { "\(error)" }
        if let postgres, postgres.isTransient || postgres.sqlState == "55P03" {
            return .transient(message: message, connectionLost: postgres.isConnectionLost)
        }
        if handler != nil { return .handler(message: message) }
        return .permanent(message: message, connectionLost: postgres?.isConnectionLost ?? false)
    }

    var isTransient: Bool {
        if case .transient = self { return true }
        return false
    }

    var connectionLost: Bool {
        switch self {
        case .transient(_, let lost), .permanent(_, let lost): lost
        case .handler, .fenced, .retired, .deleted, .cancelled: false
        }
    }
}
