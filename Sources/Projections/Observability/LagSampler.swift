import EventStore
import Foundation
import Logging
import Postgres

/// Lag in seconds: every second, on a connection borrowed from the pool, the age of the oldest committed
/// event each unit this instance runs has not applied yet (0 when caught up), into the status
/// board (`ProjectionStatus.lagSeconds`), whence `STATUS=` and the metrics take it.
struct LagSampler: Sendable {
    let board: StatusBoard
    let pool: ConnectionPool
    let options: RuntimeOptions
    let logger: Logger
    var interval: Duration = .seconds(1)

    func run() async {
        let periodic = PeriodicTask(
            role: "Lag sampler", interval: self.interval, pool: self.pool, backoff: self.options.reconnectBackoff,
            logger: self.logger, level: .debug)
        await periodic.run { connection in
            let running = self.board.all.filter { $0.state != .standby && $0.state != .retired && $0.state != .stopped }.map(\.name)
            guard !running.isEmpty else { return }
            let ages = try await CheckpointStore(schema: self.options.schema).lagSeconds(running, on: connection)
            for name in running { self.board.set(name) { $0.lagSeconds = ages[name] } }
        }
    }
}
