import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// A long dead range (a sequence moved forward by `setval`) is passed in one step and audited
/// as one row, not one row per position.
@Suite(.database, .runsAlone(.timed), .timeLimit(.minutes(2)))
struct LargeGapTests {
    @Test("a 2,000,000-position jump is passed in seconds with a bounded number of audit rows, every event applied exactly once")
    func twoMillionPositionJump() async throws {
        let db = try await projectionDatabase("large_gap")
        let connection = try await db.connect()
        let before = try await appendOrder("before", lines: 2, on: connection).last!
        try await connection.query("SELECT setval(\(Schema.positionSequenceExpression), $2)", [Schema().eventsTable.quoted, before + 2_000_000])
        // A short gap after the long one still gets a row per position.
        _ = try await appendOrder("after", lines: 1, on: connection)
        let rolledBack = try await appendOrder("rolled back", lines: 1, rollback: true, on: connection)
        let last = try await appendOrder("last", lines: 1, on: connection).last!
        let clock = ContinuousClock()
        let started = clock.now
        let running = try RunningWorker(db, [CounterProjection(name: "cnt")])
        try await eventually("caught up past the jump", timeout: .seconds(60)) { try await checkpoint("cnt", on: connection) == last }
        let took = clock.now - started
        await running.stop()
        print("passed a 2,000,000-position jump in \(took)")
        #expect(took < .seconds(10), "passing the jump took \(took)")

        let rows = try await connection.query(
            "SELECT gap_position, skip_to_position, reason FROM consumer_gap_skips WHERE consumer_name = 'cnt' ORDER BY gap_position")
        #expect(rows.count <= 10, "\(rows.count) audit rows")
        let long = try #require(rows.first)
        #expect(try long.decode(Int64.self, at: 0) == before + 1)
        #expect(try long.decode(Int64.self, at: 1) == before + 2_000_000)
        #expect(try long.decode(String.self, at: 2) == "aborted")
        // The rolled-back order's positions, one row each.
        #expect(try rows.dropFirst().map { try $0.decode(Int64.self, at: 0) } == rolledBack)

        let events = try await connection.query("SELECT count(*) FROM events")[0].decode(Int64.self, at: 0)
        let numbers = try await CounterProjection.numbers("cnt", on: connection)
        #expect(numbers.n == events && numbers.rows == events && numbers.distinct == events)
    }
}
