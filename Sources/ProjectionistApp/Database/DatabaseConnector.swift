import Logging
import Postgres
import Projections

/// Connects at start-up, retrying transient failures until `timeout` has passed.
enum DatabaseConnector {
    /// - Throws: `DatabaseUnavailableError` (exit 69) when no connection succeeded in time.
    static func connect(
        _ configuration: ConnectionConfiguration, timeout: Duration, logger: Logger
    ) async throws -> PostgresConnection {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // One process waiting for its server: no jitter, nobody to fall out of step with.
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), jitter: 1...1)
        while true {
            do {
                return try await PostgresConnection.connect(configuration)
            } catch let error as PostgresError where error.isConnectionLost {
                let delay = backoff.next()
                if clock.now + delay >= deadline {
                    throw DatabaseUnavailableError(reason: error, waited: timeout)
                }
                if backoff.attempts == 1 || backoff.attempts % 10 == 0 {
                    logger.warning(
                        "Database not reachable yet; retrying until database.startup_timeout.",
                        metadata: ["error": "\(error.message)", "startup_timeout": "\(DurationParser.format(timeout))"])
                }
                try await Task.sleep(for: delay)
            }
        }
    }
}
