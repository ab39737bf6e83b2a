import Logging
import Postgres

/// A background duty on a connection of its own (the lease coordinator, the swap monitor, the
/// lag sampler): `tick` every `interval` until the task is cancelled; a failure closes the
/// connection and the next tick reconnects after a jittered backoff. The backoff starts over
/// only after a tick succeeded: a connect that succeeds followed by the same failure (a missing
/// column, a permission) keeps backing off instead of retrying ten times a second.
struct PeriodicTask: Sendable {
    let role: String
    let interval: Duration
    let database: ConnectionConfiguration
    let backoff: Backoff
    let logger: Logger
    /// How loudly a lost connection is logged.
    var level: Logger.Level = .warning

    /// - Parameters:
    ///   - connected: runs on each new connection before its first tick.
    ///   - tick: one round of the duty.
    func run(
        connected: (PostgresConnection) async throws -> Void = { _ in }, tick: (PostgresConnection) async throws -> Void
    ) async {
        var backoff = self.backoff
        var connection: PostgresConnection?
        while !Task.isCancelled {
            do {
                let current: PostgresConnection
                if let connection { current = connection } else {
                    current = try await PostgresConnection.connect(self.database)
                    try await connected(current)
                    connection = current
                }
                try await tick(current)
                backoff.reset()
                try await Task.sleep(for: self.interval)
            } catch {
                if Task.isCancelled { break }
                self.logger.log(level: self.level, "\(self.role) lost its connection; reconnecting.", metadata: ["error": "\(error)"])
                if let lost = connection { await lost.close() }
                connection = nil
                try? await Task.sleep(for: backoff.next())
            }
        }
        if let connection { await connection.close() }
    }
}
