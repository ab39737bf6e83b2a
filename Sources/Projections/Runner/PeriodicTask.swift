import Logging
import Postgres

/// A background duty on a borrowed connection (the lease coordinator, the swap monitor, the lag
/// sampler): `tick` every `interval` until the task is cancelled, each tick on a connection
/// borrowed from the pool for that tick only. A failure waits a jittered backoff before the next
/// tick (the pool discards a connection that broke). The backoff starts over only after a tick
/// succeeded: a tick that keeps failing the same way (a missing column, a permission) keeps
/// backing off instead of retrying ten times a second.
struct PeriodicTask: Sendable {
    let role: String
    let interval: Duration
    let pool: ConnectionPool
    var priority: ConnectionPool.Priority = .batch
    let backoff: Backoff
    let logger: Logger
    /// How loudly a failed tick is logged.
    var level: Logger.Level = .warning

    /// - Parameters:
    ///   - first: runs before the first tick, and again before the next until it succeeded once.
    ///   - tick: one round of the duty.
    func run(
        first: (PostgresConnection) async throws -> Void = { _ in }, tick: (PostgresConnection) async throws -> Void
    ) async {
        var backoff = self.backoff
        var firstDone = false
        while !Task.isCancelled {
            do {
                try await self.pool.withConnection(priority: self.priority) { connection in
                    if !firstDone {
                        try await first(connection)
                        firstDone = true
                    }
                    try await tick(connection)
                }
                backoff.reset()
                try await Task.sleep(for: self.interval)
            } catch {
                if Task.isCancelled { break }
                self.logger.log(level: self.level, "\(self.role) failed; trying again.", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}
