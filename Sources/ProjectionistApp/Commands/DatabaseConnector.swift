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
        var attempts = 0
        while true {
            attempts += 1
            do {
                return try await PostgresConnection.connect(configuration)
            } catch let error as PostgresError where error.isConnectionLost {
                if clock.now + delay >= deadline {
                    throw DatabaseUnavailableError(reason: error, waited: timeout)
                }
                if attempts == 1 || attempts % 10 == 0 {
                    logger.warning(
                        "Database not reachable yet; retrying until database.startup_timeout.",
                        metadata: ["error": "\(error.message)", "startup_timeout": "\(DurationParser.format(timeout))"])
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }
}
