import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// A runner that fails before it ever committed records `failed` and its error in its row, so
/// that `status` shows why.
@Suite(.database, .timeLimit(.minutes(2)))
struct FirstBatchFailureTests {
    @Test(
        "a projection failing on its first event (stop), or whose SQL cannot be prepared, records failed and the error in its row and on the board",
        arguments: ["first event", "missing table"])
    func failsFirst(_ how: String) async throws {
        let db = try await projectionDatabase("first_failure")
        let connection = try await db.connect()
        let positions = try await appendOrder("a", lines: 1, on: connection)
        let statement =
            how == "first event"
            ? "INSERT INTO counter_log VALUES ($projection, $global_position / 0)" : "INSERT INTO no_such_table VALUES ($global_position)"
        let projection = try SQLProjection(
            name: "first", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [(eventType: "OrderPlaced", statements: [statement])])
        let running = try RunningWorker(db, [projection])
        try await eventually("the row says failed, with the error", timeout: .seconds(20)) {
            let row = try await record("first", on: connection)
            return row?.state == "failed" && row?.lastError != nil
        }
        let row = try #require(try await record("first", on: connection))
        #expect(row.position == 0)
        let expected = how == "first event" ? "division by zero" : "no_such_table"
        #expect(row.lastError?.contains(expected) == true, "\(row.lastError ?? "nil")")
        if how == "first event" { #expect(row.lastError?.contains("position \(positions[0])") == true) }
        #expect(running.status("first")?.state == .failed)
        #expect(running.status("first")?.lastError?.contains(expected) == true)
        await running.stop()
    }
}
