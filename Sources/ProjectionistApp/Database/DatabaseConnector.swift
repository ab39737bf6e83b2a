import Logging
import Postgres
import Projections
import Synchronization

/// Connects at start-up, retrying transient failures until `timeout` has passed.
enum DatabaseConnector {
    /// How long a command waits in silence before it says that it waits.
    static let quietFor: Duration = .milliseconds(1500)

    /// - Parameter waiting: told once, after `quietFor` without a connection, what it waits for
    ///   and how long it will (an operator command prints it); nil: the logger says it.
    /// - Throws: `DatabaseRefusedError` (exit 78) at once when retrying cannot help (an unknown
    ///   database, failed authentication, a connection string libpq refuses);
    ///   `DatabaseUnavailableError` (exit 69) when no connection succeeded in time.
    static func connect(
        _ configuration: ConnectionConfiguration, timeout: Duration, logger: Logger, waiting: (@Sendable (String) -> Void)? = nil
    ) async throws -> PostgresConnection {
        if let problem = configuration.parseProblem {
            throw DatabaseRefusedError(reason: "libpq cannot parse the connection string", message: problem)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let target = configuration.target
        let lastError = LastError()
        let notice = Task {
            try await Task.sleep(for: Self.quietFor)
            let line =
                "Waiting for the database at \(target), up to database.startup_timeout \(DurationParser.format(timeout)): "
                + (lastError.value.withLock { $0 } ?? "no answer yet")
            if let waiting { waiting(line) } else { logger.warning("\(line)") }
        }
        defer { notice.cancel() }
        // One process waiting for its server: no jitter, nobody to fall out of step with.
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), jitter: 1...1)
        while true {
            do {
                return try await PostgresConnection.connect(configuration)
            } catch let error as PostgresError where error.isConnectionLost {
                if let reason = ConnectionRefusal.reason(for: error.message) {
                    throw DatabaseRefusedError(reason: reason, message: error.message)
                }
                lastError.value.withLock { $0 = error.message }
                let delay = backoff.next()
                if clock.now + delay >= deadline {
                    throw DatabaseUnavailableError(reason: error, waited: timeout)
                }
                if waiting == nil, backoff.attempts == 1 || backoff.attempts % 10 == 0 {
                    logger.warning(
                        "Database not reachable yet; retrying until database.startup_timeout.",
                        metadata: ["error": "\(error.message)", "startup_timeout": "\(DurationParser.format(timeout))"])
                }
                try await Task.sleep(for: delay)
            }
        }
    }
}

/// The last failure's message, shared with the task that says the command waits.
private final class LastError: Sendable {
    let value = Mutex<String?>(nil)
}
