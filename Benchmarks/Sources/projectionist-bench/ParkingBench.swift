import Foundation
import Postgres
import ProjectionistApp
import Projections
import TestSupport

/// What `on_error: park` costs a catch-up when nothing is parked (the parked set is
/// checked through the checkpoint row's `parked_version`, read by the lock every transaction
/// takes anyway). The SQL projection from the example configuration catches up as `stop` and as
/// `park`, alternating for BENCH_ROUNDS rounds, each figure the median of its rounds; the spread
/// of the `stop` rounds is the run's noise.
struct ParkingFigures: Codable, Sendable {
    var stop: Double
    var park: Double
    /// (max − min) / median of the `stop` rounds.
    var noise: Double
    var cost: Double { self.stop > 0 ? 1 - self.park / self.stop : 0 }
}

extension Bench {
    mutating func parking(_ admin: PostgresConnection) async throws {
        if self.results.events == 0 { try await self.seedLog(admin) }
        let example = try self.exampleConfiguration().projections[0]
        func projection(_ onError: OnError) throws -> SQLProjection {
            try SQLProjection(
                name: "order_overview_v1", aggregateTypes: example.aggregateTypes, onError: onError, setup: nil, reset: nil,
                handlers: example.handlers)
        }
        let orderEvents = try await admin.query("SELECT count(*) FROM events WHERE aggregate_type = 'Order'")[0].decode(Int64.self, at: 0)
        let rounds = max(1, Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3)
        var stops: [Double] = [], parks: [Double] = []
        for round in 1...rounds {
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            stops.append(Double(orderEvents) / (try await self.catchUp([try projection(.stop)], options: self.options(), admin: admin)))
            try await admin.execute(script: "TRUNCATE order_overview_v1")
            parks.append(Double(orderEvents) / (try await self.catchUp([try projection(.park)], options: self.options(), admin: admin)))
            self.results.oracleDifferences += try await OrderWorkload.oracleDifferences(on: admin)
            print(String(format: "parking round %d: on_error stop %.0f events/s, park %.0f events/s", round, stops[round - 1], parks[round - 1]))
        }
        let stop = median(stops)
        let figures = ParkingFigures(stop: stop, park: median(parks), noise: stop > 0 ? (stops.max()! - stops.min()!) / stop : 0)
        self.results.parking = figures
        print(String(
            format: "on_error park, nothing parked: %.0f vs %.0f events/s with stop (cost %.1f %%, noise of the stop rounds %.1f %%)",
            figures.park, figures.stop, 100 * figures.cost, 100 * figures.noise))
    }
}
