import Logging
import Postgres

/// A background duty on a borrowed connection (the lease coordinator, the swap monitor, the lag
/// sampler): `tick` every `interval` until the task is cancelled, each tick on a connection
/// borrowed from the pool for that tick only. A failure waits `RetryLoop`'s backoff before the
/// next tick (the pool discards a connection that broke), which starts over once a tick succeeded.
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
        var firstDone = false
        await RetryLoop(role: self.role, backoff: self.backoff, logger: self.logger, level: self.level).run { progressed in
            try await self.pool.withConnection(priority: self.priority) { connection in
                if !firstDone {
                    try await first(connection)
                    firstDone = true
                }
                try await tick(connection)
            }
            progressed()
            try await Task.sleep(for: self.interval)
        }
    }
}
