import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(3)))
struct ExactlyOnceTests {
    @Test("4 writers, 2,000 appends, ~10% rolled back: read model = oracle, counter exact, rollbacks audited")
    func concurrentWritersWithRollbacks() async throws {
        let db = try await projectionDatabase("exactly_once")
        let running = try RunningWorker(db, [OrderOverviewProjection(), CounterProjection(name: "counter")])
        // 500 orders × 4 events from 4 writers = 2,000 appends.
        let writers = OrderWriters(writers: 4, orders: 500, rollbackPercent: 10) { OrderWorkload.events(orderID: "o\($0)") }
        let outcome = try await writers.run { try await db.connect() }
        let rolledBack = outcome.rolledBack
        let connection = try await db.connect()
        let committed = try await connection.query("SELECT count(*) FROM events")[0].decode(Int64.self, at: 0)
        let last = try await head(on: connection)
        try await eventually("both checkpoints reach the head") {
            let counter = try await checkpoint("counter", on: connection)
            let overview = try await checkpoint("order_overview_v1", on: connection)
            return counter == last && overview == last
        }
        await running.stop()
        // The events table holds exactly what the writers saw commit, and none of what they rolled back.
        #expect(committed == Int64(outcome.committed.count))
        let stored = try await connection.query("SELECT global_position FROM events").map { try $0.decode(Int64.self, at: 0) }
        #expect(Set(stored) == Set(outcome.committed))
        #expect(!rolledBack.isEmpty)
        let rolledBackStored = try await connection.query(
            "SELECT count(*) FROM events WHERE global_position = ANY($1::bigint[])", [PostgresTextArray(rolledBack.map(String.init))]
        )[0].decode(Int64.self, at: 0)
        #expect(rolledBackStored == 0)
        #expect(try await OrderWorkload.oracleDifferences(on: connection) == 0)
        let numbers = try await CounterProjection.numbers("counter", on: connection)
        #expect(numbers.n == committed)
        #expect(numbers.rows == committed)
        #expect(numbers.distinct == committed)
        // Every rolled-back position below the head was passed over and audited as aborted.
        let audited = try await connection.query(
            "SELECT gap_position FROM consumer_gap_skips WHERE consumer_name = 'counter' AND reason = 'aborted'"
        ).map { try $0.decode(Int64.self, at: 0) }
        #expect(Set(audited) == Set(rolledBack.filter { $0 < last }))
        print("exactly-once: \(committed) committed, \(rolledBack.count) rolled back, \(audited.count) audited")
    }

    @Test("an append held open until the runner is seen waiting on it: later events wait, status shows the gap, then all exactly once")
    func slowTransactionIsWaitedFor() async throws {
        let db = try await projectionDatabase("held_open")
        let running = try RunningWorker(db, [CounterProjection(name: "counter")])
        let slow = try await db.connect()
        let fast = try await db.connect()
        let observer = try await db.connect()
        let (heldSignal, held) = AsyncStream.makeStream(of: Int64.self)
        // Held until the test has seen the runner wait (a fixed hold would race a slow start on
        // a loaded machine), and at least a second.
        let (releaseSignal, release) = AsyncStream.makeStream(of: Void.self)
        defer { release.finish() }  // a failing expectation below must not leave it open
        let slowCommit = Task {
            try await slow.transaction { tx in
                let result = try await EventStore().append(OrderWorkload.events(orderID: "slow", lines: 0), expected: .noStream, in: tx)
                held.yield(result.globalPositions[0])
                try await Task.sleep(for: .seconds(1))
                for await _ in releaseSignal { break }
            }
        }
        var iterator = heldSignal.makeAsyncIterator()
        let gap = try #require(await iterator.next())
        let pid = await slow.backendPID
        let later = try await appendOrder("fast", lines: 1, on: fast)
        try await eventually("the runner waits on the gap") {
            running.status("counter")?.state == .waitingOnGap && running.status("counter")?.gapHolder != nil
        }
        let status = try #require(running.status("counter"))
        #expect(status.gapPosition == gap)
        #expect(status.gapHolder?.pid == pid)
        #expect(status.summary.contains("waiting on gap \(gap) held by pid \(pid)"))
        #expect(try await checkpoint("counter", on: observer) < gap)
        #expect(try await CounterProjection.numbers("counter", on: observer).n == 0)
        release.yield()
        try await slowCommit.value
        try await eventually("everything applied after the commit") {
            try await checkpoint("counter", on: observer) == later.last!
        }
        await running.stop()
        let numbers = try await CounterProjection.numbers("counter", on: observer)
        #expect(numbers.n == 5)
        #expect(numbers.distinct == 5)
        let skips = try await observer.query("SELECT count(*) FROM consumer_gap_skips")[0].decode(Int64.self, at: 0)
        #expect(skips == 0)
    }

    @Test("gap_skip_after passes a gap whose owner is still open, audited as timeout")
    func gapSkipAfter() async throws {
        let db = try await projectionDatabase("gap_timeout")
        let running = try RunningWorker(db, [CounterProjection(name: "counter")], options: testOptions { $0.gapSkipAfter = .milliseconds(300) })
        let slow = try await db.connect()
        let fast = try await db.connect()
        try await slow.query("BEGIN")
        let held = try await slow.query(
            "INSERT INTO events (aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload) VALUES ('Order', 'held', 1, gen_random_uuid(), 'X', '\\x7b7d') RETURNING global_position"
        )[0].decode(Int64.self, at: 0)
        let later = try await appendOrder("after", lines: 0, on: fast)
        try await eventually("the gap is skipped after 300 ms") { try await checkpoint("counter", on: fast) == later.last! }
        let reason = try await fast.query("SELECT reason FROM consumer_gap_skips WHERE gap_position = $1", [held])
        #expect(try reason.first?.decode(String.self, at: 0) == "timeout")
        try await slow.query("ROLLBACK")
        await running.stop()
    }
}
