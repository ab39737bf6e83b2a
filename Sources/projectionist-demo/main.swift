import Foundation
import Postgres
import TestSupport

// The demo's writers: several concurrent connections append the workload's orders (placed, 1–3
// lines, confirmed) through the event store; some appends are rolled back on purpose, which
// leaves holes in global_position that the daemon must pass without stalling or losing events.
//
// Usage: projectionist-demo ORDERS WRITERS ROLLBACK_PERCENT   (connection from PROJECTIONIST_DATABASE_URL or PG*)

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let configuration = ConnectionConfiguration(
    connectionString: ProcessInfo.processInfo.environment["PROJECTIONIST_DATABASE_URL"] ?? "", applicationName: "projectionist-demo")
let writers = OrderWriters(
    writers: arguments.count > 1 ? arguments[1] : 4, orders: arguments.count > 0 ? arguments[0] : 300,
    rollbackPercent: arguments.count > 2 ? arguments[2] : 10)
let outcome = try await writers.run { try await PostgresConnection.connect(configuration) }
print(
    "appended \(outcome.committed.count) events from \(writers.writers) concurrent writers; rolled back \(outcome.rolledBack.count) on purpose")
