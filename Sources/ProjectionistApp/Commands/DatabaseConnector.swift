import Logging
import Postgres

/// Connects at start-up, retrying transient failures until `timeout` has passed.
enum DatabaseConnector {
    /// - Throws: `DatabaseUnavailableError` (exit 69) when no connection succeeded in time.
    static func connect(
        _ configuration: ConnectionConfiguration, timeout: Duration, logger: Logger
    ) async throws -> PostgresConnection {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await PostgresConnection.connect(configuration)
            } catch let error as PostgresError where error.isConnectionLost {
                if clock.now + delay >= deadline {
                    throw DatabaseUnavailableError(reason: error, waited: timeout)
                }
                logger.warning("Database not reachable yet; retrying.", metadata: ["error": "\(error.message)", "retry.in": "\(delay)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }
}
