import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// Tests where time is the behaviour (a gap must not stall, a slow projection must not delay
/// the others). scripts/test runs this suite on its own after the others, so the parallel load
/// of the rest of the suite does not decide their bounds.
@Suite(.database, .runsAlone(.timed), .serialized, .timeLimit(.minutes(2)))
struct LatencyTests {
    @Test("a rolled-back append followed by a committed one: applied within 1 s, not after a timeout")
    func rollbackGapDoesNotStall() async throws {
        let db = try await projectionDatabase("rollback_gap")
        let running = try RunningWorker(db, [CounterProjection(name: "counter")])
        let connection = try await db.connect()
        try await appendOrder("warmup", lines: 0, on: connection)
        try await eventually("warm-up applied") { try await CounterProjection.numbers("counter", on: connection).n == 2 }
        var delays: [Duration] = []
        for round in 0..<5 {
            try await appendOrder("gone-\(round)", lines: 0, rollback: true, on: connection)
            let clock = ContinuousClock()
            let start = clock.now
            let positions = try await appendOrder("kept-\(round)", lines: 0, on: connection)
            try await eventually("committed event after a rollback applied", timeout: .seconds(1), every: .milliseconds(2)) {
                try await checkpoint("counter", on: connection) >= positions.last!
            }
            delays.append(clock.now - start)
        }
        await running.stop()
        print("rollback-gap delay (commit → applied): \(delays.map { "\($0.components.attoseconds / 1_000_000_000_000_000 + $0.components.seconds * 1000) ms" })")
        #expect(delays.allSatisfy { $0 < .seconds(1) })
        #expect(try await CounterProjection.numbers("counter", on: connection).n == 12)
    }

    @Test("nine projections, one sleeping 2 s per event: the other eight see a new event in under 500 ms")
    func slowProjectionDoesNotDelayOthers() async throws {
        let db = try await projectionDatabase("nine")
        var projections: [any Projection] = [CounterProjection(name: "sleepy", sleepSeconds: 2)]
        for index in 0..<8 { projections.append(CounterProjection(name: "quick\(index)")) }
        let running = try RunningWorker(db, projections)
        let connection = try await db.connect()
        try await appendOrder("first", lines: 0, on: connection)
        try await eventually("the sleepy projection is busy") {
            try await connection.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep%' AND state = 'active' AND (application_name = 'projectionist' OR application_name LIKE 'projectionist/%' OR application_name LIKE 'projectionist %')")[0]
                .decode(Int64.self, at: 0) > 0
        }
        for round in 0..<3 {
            let positions = try await appendOrder("next\(round)", lines: 0, on: connection)
            let clock = ContinuousClock()
            let start = clock.now
            try await eventually("eight quick projections apply the new event", timeout: .seconds(5), every: .milliseconds(5)) {
                let quick = try await CheckpointStore().records((0..<8).map { "quick\($0)" }, on: connection)
                return quick.count == 8 && quick.allSatisfy { $0.position >= positions.last! }
            }
            let elapsed = clock.now - start
            print("nine projections: round \(round) reached the eight quick ones in \(elapsed)")
            #expect(elapsed < .milliseconds(500))
        }
        await running.stop()
    }

    @Test("wake-ups: the notify trigger (when installed) or the shared head probe wake an idle runner long before its poll", arguments: [true, false])
    func wakeups(viaTrigger: Bool) async throws {
        var schema = Schema()
        schema.notifyTrigger = viaTrigger
        let db = try await TestDatabase.migrated("wake", schema: schema)
        let connection = try await db.connect()
        try await connection.execute(script: CounterProjection.setupSQL)
        let running = try RunningWorker(db, [CounterProjection(name: "counter")], options: testOptions {
            $0.pollInterval = .seconds(10)
            $0.maxPollInterval = .seconds(10)
            $0.headPollInterval = viaTrigger ? nil : .milliseconds(50)  // one mechanism at a time
        })
        try await eventually("idle") { running.status("counter")?.state == .idle }
        try await Task.sleep(for: .milliseconds(200))
        for round in 0..<3 {
            let clock = ContinuousClock()
            let start = clock.now
            let positions = try await appendOrder("a\(round)", lines: 0, on: connection)
            try await eventually("woken", timeout: .seconds(2), every: .milliseconds(2)) {
                try await checkpoint("counter", on: connection) == positions.last!
            }
            let elapsed = clock.now - start
            print("wake-up via \(viaTrigger ? "NOTIFY" : "head probe"): \(elapsed)")
            #expect(elapsed < .milliseconds(500))
        }
        await running.stop()
    }
}
