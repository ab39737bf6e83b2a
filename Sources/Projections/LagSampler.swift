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
                    let ages = try await Self.lagSeconds(of: running, schema: self.options.schema, on: current)
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

    /// Per unit: seconds since the oldest committed event after its checkpoint was written
    /// (0 when there is none), by the server's clock.
    static func lagSeconds(of units: [String], schema: Schema, on connection: some PostgresQuerying) async throws -> [String: Double] {
        var ages: [String: Double] = [:]
        for row in try await connection.query(
            """
            SELECT c.consumer_name, coalesce(greatest(0, extract(epoch FROM now() - (
                       SELECT e.created_at FROM \(schema.eventsTable.quoted) e WHERE e.global_position > c.last_position
                       ORDER BY e.global_position LIMIT 1)))::float8, 0)
            FROM \(schema.checkpointsTable.quoted) c WHERE c.consumer_name = ANY($1::text[])
            """, [PostgresTextArray(units)])
        {
            ages[try row.decode(String.self, at: 0)] = try row.decode(Double.self, at: 1)
        }
        return ages
    }
}
