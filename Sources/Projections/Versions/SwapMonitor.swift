import EventStore
import Foundation
import Logging
import Postgres

/// Hands published views to successors: every second, on a connection borrowed from the pool, for each
/// projection that `replaces` another still serving, checks whether it has caught up
/// (`Publications.ready`) and if so swaps (`Publications.swap`). Every instance runs one; the
/// swap locks the predecessor's checkpoint rows, so one of them does it and the rest find it done.
struct SwapMonitor: Sendable {
    let projections: [any Projection]
    let pool: ConnectionPool
    let options: RuntimeOptions
    let logger: Logger

    var successors: [any Projection] {
        self.projections.filter { projection in
            guard let replaced = projection.replaces else { return false }
            return self.projections.contains { $0.name == replaced }
        }
    }

    func run() async {
        guard !self.successors.isEmpty else { return }
        var warned: Set<String> = []
        var done: Set<String> = []
        let periodic = PeriodicTask(
            role: "Swap monitor", interval: .seconds(1), pool: self.pool, backoff: self.options.reconnectBackoff,
            logger: self.logger)
        await periodic.run { connection in try await self.check(on: connection, warned: &warned, done: &done) }
    }

    /// One look: swaps every successor that is ready. `done`: the successors seen to serve
    /// their views already, never looked at again by this instance (after `drop` of the
    /// retired predecessor its row is gone, and a swap would create it again).
    func check(on connection: PostgresConnection, warned: inout Set<String>, done: inout Set<String>) async throws {
        let publications = Publications(schema: self.options.schema, projections: self.projections)
        let retired = try await publications.retired(on: connection)
        for successor in self.successors {
            let predecessor = successor.replaces!
            guard !done.contains(successor.name) else { continue }
            if retired[predecessor] != nil { done.insert(successor.name) }
            guard retired[predecessor] == nil, retired[successor.name] == nil else { continue }
            guard try await publications.isReady(successor.name, replacing: predecessor, batchSize: self.options.batchSize, on: connection)
            else { continue }
            do {
                let clock = ContinuousClock()
                let started = clock.now
                let result = try await publications.swap(successor, replacing: predecessor, batchSize: self.options.batchSize, on: connection)
                if result != .notReady { done.insert(successor.name) }
                if result == .swapped {
                    self.logger.info(
                        "Swapped the published views to the successor; the predecessor is retired.",
                        metadata: [
                            "successor": "\(successor.name)", "retired": "\(predecessor)",
                            "views": "\(successor.publishes.keys.sorted())", "swap.seconds": "\(clock.now - started)",
                        ])
                }
            } catch let error as PostgresError where error.sqlState == "55P03" {
                // A reader's long query holds a view: readers must not queue behind the swap; try again.
                if warned.insert(successor.name).inserted {
                    self.logger.notice(
                        "The swap waits for readers' queries on the published views; retrying every second.",
                        metadata: ["successor": "\(successor.name)"])
                }
            }
        }
    }
}
