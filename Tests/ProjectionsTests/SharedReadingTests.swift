import EventStore
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// Units catching up together read the log once between them, not once each.
@Suite(.database, .runsAlone(.manyProjections), .timeLimit(.minutes(3)))
struct SharedReadingTests {
    @Test("20 projections (scoped, unscoped, partitioned) catching up together from 0 read about one log's worth of rows, each exactly once")
    func oneReadForAll() async throws {
        let db = try await projectionDatabase("shared_reading")
        let connection = try await db.connect()
        let seeded = try await Seeder.seedOrders(600, otherType: "Refund", otherEvery: 5, on: connection)
        // Statistics as after a bulk load that autovacuum has not analyzed yet: the reads must
        // not depend on them.
        let before = try await eventsRowsRead(on: connection)
        var projections: [any Projection] = (0..<17).map { index in
            CounterProjection(name: "count_\(index)", aggregateTypes: index % 2 == 0 ? ["Order"] : nil)
        }
        projections.append(CounterProjection(name: "split", partitions: 3))
        let running = try RunningWorker(db, projections)
        // Live appends while they catch up, some rolled back (holes the window holds as gaps).
        var positions: [Int64] = []
        for index in 0..<20 {
            let appended = try await appendOrder("live-\(index)", rollback: index % 4 == 3, on: connection)
            if index % 4 != 3 { positions += appended }
        }
        let head = try await connection.query("SELECT max(global_position) FROM events", [])[0].decode(Int64.self, at: 0)
        let units = projections.flatMap(WorkUnit.units(of:)).map(\.name)
        #expect(units.count == 20)
        try await eventually("every unit caught up", timeout: .seconds(90)) {
            for unit in units where try await checkpoint(unit, on: connection) != head { return false }
            return true
        }
        await running.stop()
        let events = seeded + Int64(positions.count)
        let refunds = try await connection.query("SELECT count(*) FROM events WHERE aggregate_type = 'Refund'", [])[0].decode(Int64.self, at: 0)
        for projection in projections {
            let numbers = try await CounterProjection.numbers(projection.name, on: connection)
            let expected = projection.aggregateTypes == nil ? events : events - refunds
            #expect(numbers.n == expected && numbers.rows == expected && numbers.distinct == expected, "\(projection.name): \(numbers)")
        }
        // The backends' counters reach the statistics when they end; give them a moment.
        var read = try await eventsRowsRead(on: connection) - before
        try await eventually("the statistics settle", timeout: .seconds(10)) {
            try await Task.sleep(for: .milliseconds(700))
            let now = try await eventsRowsRead(on: connection) - before
            defer { read = now }
            return now == read
        }
        // The test read the table itself once (the Refund count), and the head.
        let ownReads = events + 1
        #expect(read - ownReads <= events * 3 / 2, "read \(read - ownReads) rows of events for a log of \(events)")
    }
}
