import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// A runner whose checkpoint row went (`reset` into a new partition layout, `drop`) while it
/// runs never recreates the row: it stops that unit and says why.
@Suite(.database, .timeLimit(.minutes(2)))
struct DeletedCheckpointTests {
    @Test("a checkpoint row deleted under a running runner is not recreated, nothing is re-applied, and the unit reports failed")
    func deletedUnderRunner() async throws {
        let db = try await projectionDatabase("deleted_row")
        let connection = try await db.connect()
        let first = try await appendOrder("a", lines: 2, on: connection).last!
        let running = try RunningWorker(db, [CounterProjection(name: "cnt")])
        try await eventually("caught up") { try await checkpoint("cnt", on: connection) == first }
        try await connection.query("DELETE FROM consumer_checkpoints WHERE consumer_name = 'cnt'")
        // What a daemon on the old configuration meets after `reset`/`drop` truncated the read model.
        try await connection.query("DELETE FROM counter_log WHERE projection = 'cnt'")
        try await connection.query("DELETE FROM counters WHERE projection = 'cnt'")
        _ = try await appendOrder("b", lines: 1, on: connection)
        // Long enough for polls, heartbeats and a lease renewal or two.
        try await Task.sleep(for: .seconds(2))
        #expect(try await checkpoint("cnt", on: connection) == -1, "the row was recreated")
        let numbers = try await CounterProjection.numbers("cnt", on: connection)
        #expect(numbers.rows == 0, "events were re-applied into the truncated read model")
        try await eventually("the unit reports that its row was deleted", timeout: .seconds(10)) {
            running.status("cnt")?.state == .failed && running.status("cnt")?.lastError?.contains("'cnt'") == true
        }
        #expect(running.status("cnt")?.lastError?.contains("deleted") == true)
        // An ended runner does not starve the watchdog.
        #expect(running.worker.board.allResponsive(within: .seconds(1)))
        await running.stop()
        #expect(try await checkpoint("cnt", on: connection) == -1, "the row was recreated at shutdown")
    }

    @Test("reset into a new partition layout while a daemon runs the old one: the old layout's rows stay deleted and nothing is applied twice")
    func resetIntoNewLayout() async throws {
        let db = try await projectionDatabase("deleted_layout")
        let connection = try await db.connect()
        let first = try await appendOrders(6, prefix: "o", on: connection)
        let old = CounterProjection(name: "cnt", partitions: 2)
        let running = try RunningWorker(db, [old])
        try await eventually("both partitions caught up") {
            let rows = try await PartitionLayout.rows(of: "cnt", schema: Schema(), on: connection)
            let applied = try await CounterProjection.numbers("cnt", on: connection).distinct
            return rows.count == 2 && applied == first
        }
        let before = try await PartitionLayout.rows(of: "cnt", schema: Schema(), on: connection)
        let result = try await ProjectionReset.reset(CounterProjection(name: "cnt", partitions: 1), to: 0, schema: Schema(), on: connection)
        #expect(result.previous.map(\.unit) == ["cnt#0/2", "cnt#1/2"])
        #expect(result.previous.map(\.position) == before.map(\.position))
        #expect(result.previous.allSatisfy { $0.position > 0 }, "reset printed the new rows' 0, not the old positions")
        _ = try await appendOrder("late", lines: 1, on: connection)
        try await Task.sleep(for: .seconds(2))
        let units = try await PartitionLayout.rows(of: "cnt", schema: Schema(), on: connection).map(\.unit)
        #expect(units == ["cnt"], "the old layout's rows were recreated")
        #expect(try await CounterProjection.numbers("cnt", on: connection).rows == 0, "the old daemon re-applied events")
        try await eventually("both old units stop", timeout: .seconds(10)) {
            ["cnt#0/2", "cnt#1/2"].allSatisfy { running.status($0)?.state == .failed }
        }
        await running.stop()
    }
}
