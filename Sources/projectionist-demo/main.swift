import EventStore
import Foundation
import Postgres
import TestSupport

// The demo's writers: several concurrent connections append the workload's orders (placed, 1–3
// lines, confirmed) through the event store; some appends are rolled back on purpose, which
// leaves holes in global_position that the daemon must pass without stalling or losing events.
// Orders are numbered on from the highest already in the store, so a second run adds new ones.
//
// Usage: projectionist-demo ORDERS WRITERS ROLLBACK_PERCENT   (connection from PROJECTIONIST_DATABASE_URL or PG*)

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let configuration = ConnectionConfiguration(
    connectionString: ProcessInfo.processInfo.environment["PROJECTIONIST_DATABASE_URL"] ?? "", applicationName: "projectionist-demo")
do {
    let connection = try await PostgresConnection.connect(configuration)
    // The workload's order ids are `o-N`; the first one not taken yet.
    let first = try await connection.query(
        "SELECT coalesce(max(substring(aggregate_id FROM 3)::bigint) + 1, 0) FROM aggregate_heads WHERE aggregate_type = 'Order' AND aggregate_id ~ '^o-[0-9]{1,18}$'"
    )[0].decode(Int64.self, at: 0)
    await connection.close()
    let writers = OrderWriters(
        writers: arguments.count > 1 ? arguments[1] : 4, orders: arguments.count > 0 ? arguments[0] : 300,
        rollbackPercent: arguments.count > 2 ? arguments[2] : 10, events: { OrderWorkload.order(Int(first) + $0) })
    let outcome = try await writers.run { try await PostgresConnection.connect(configuration) }
    print(
        "appended \(outcome.committed.count) events (orders o-\(first) on) from \(writers.writers) concurrent writers; rolled back \(outcome.rolledBack.count) on purpose"
    )
} catch let error as EventStoreError where error.code == .versionConflict {
    FileHandle.standardError.write(
        Data("projectionist-demo: \(error). Another writer (a second demo running at the same time?) appended the same order: run it again once that one is done.\n".utf8))
    exit(1)
} catch {
    FileHandle.standardError.write(Data("projectionist-demo: \(error)\n".utf8))
    exit(1)
}
