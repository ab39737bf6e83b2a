import EventStore
import Foundation
import Logging
import Postgres

/// Lag in seconds: every second, on a connection of its own, the age of the oldest committed
/// event each unit this instance runs has not applied yet (0 when caught up), into the status
/// board (`ProjectionStatus.lagSeconds`), whence `STATUS=` and the metrics take it.
struct LagSampler: Sendable {
    let board: StatusBoard
    let database: ConnectionConfiguration
    let options: RuntimeOptions
    let logger: Logger
    var interval: Duration = .seconds(1)

    func run() async {
        var backoff = self.options.reconnectBackoff
        var connection: PostgresConnection?
        while !Task.isCancelled {
            do {
                let current: PostgresConnection
                if let connection { current = connection } else {
                    current = try await PostgresConnection.connect(self.database)
                    connection = current
                    backoff.reset()
                }
                let running = self.board.all.filter { $0.state != .standby && $0.state != .retired && $0.state != .stopped }.map(\.name)
                if !running.isEmpty {
                    let ages = try await CheckpointStore(schema: self.options.schema).lagSeconds(running, on: current)
                    for name in running { self.board.set(name) { $0.lagSeconds = ages[name] } }
                }
                try await Task.sleep(for: self.interval)
            } catch {
                if Task.isCancelled { break }
                self.logger.debug("Lag sampler lost its connection; reconnecting.", metadata: ["error": "\(error)"])
                if let lost = connection { await lost.close() }
                connection = nil
                try? await Task.sleep(for: backoff.next())
            }
        }
        if let connection { await connection.close() }
    }
}
