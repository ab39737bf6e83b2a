import EventStore
import Foundation
import Logging
import Postgres
import Projections
import TestSupport

// The benchmark: measures the ceiling (order_overview_v1's statements pipelined straight
// through the Postgres module) and the runtime's catch-up on the same events, in one run.
// Connection: PROJECTIONIST_BENCH_DATABASE (a libpq string; scripts/bench sets it).

let environment = ProcessInfo.processInfo.environment
let orders = Int(environment["BENCH_ORDERS"] ?? "") ?? 50_000
let connectionString = environment["PROJECTIONIST_BENCH_DATABASE"] ?? ""
let configuration = ConnectionConfiguration(connectionString: connectionString)

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

let admin = try await PostgresConnection.connect(configuration)
try await admin.execute(script: "DROP TABLE IF EXISTS events, aggregate_heads, consumer_checkpoints, consumer_gap_skips, consumer_dead_letters, order_overview_v1 CASCADE")
try await admin.execute(script: Migration.sql(for: Schema()))
try await admin.execute(script: OrderWorkload.readModelSQL)
let clock = ContinuousClock()
var start = clock.now
let total = try await Seeder.seedOrders(orders, on: admin)
print("seeded \(total) events in \(String(format: "%.1f", seconds(clock.now - start))) s")
try await admin.execute(script: "VACUUM ANALYZE events")

// Ceiling: the same statements, pipelined, 1,000 per transaction, no runtime.
let events = try await EventStore().readEvents(after: 0, limit: Int(total), on: admin)
let projection = OrderOverviewProjection()
start = clock.now
for chunk in stride(from: 0, to: events.count, by: 1000) {
    try await admin.transaction { tx in
        var pipeline = Pipeline()
        for event in events[chunk..<min(chunk + 1000, events.count)] {
            let statement = try projection.statement(for: event)
            pipeline.append(statement.sql, statement.parameters)
        }
        try await tx.execute(pipeline)
    }
}
let ceiling = Double(total) / seconds(clock.now - start)
print("ceiling: \(Int(ceiling)) events/s")

// Catch-up: the runtime rebuilding order_overview_v1 from 0.
try await admin.execute(script: "TRUNCATE order_overview_v1")
var options = RuntimeOptions()
options.pollInterval = .milliseconds(50)
var logger = Logger(label: "bench")
logger.logLevel = .warning
let worker = try Worker(projections: [projection], database: configuration, options: options, logger: logger)
start = clock.now
let run = Task { try await worker.run() }
let head = try await EventStore().latestPosition(on: admin)
while try await admin.query("SELECT last_position FROM consumer_checkpoints WHERE consumer_name = 'order_overview_v1'").first?.decode(Int64.self, at: 0) != head {
    try await Task.sleep(for: .milliseconds(5))
}
let catchUp = Double(total) / seconds(clock.now - start)
run.cancel()
try await run.value
print("catch-up (Swift projection): \(Int(catchUp)) events/s, \(String(format: "%.0f", 100 * catchUp / ceiling)) % of the ceiling")
let differences = try await OrderWorkload.oracleDifferences(on: admin)
print("read model vs oracle: \(differences) differing rows")
