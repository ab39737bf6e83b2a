import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(3)))
struct FailureTests {
    @Test("backends terminated repeatedly during a 20,000-event catch-up, worker cancelled and restarted: counter exact")
    func terminationsAndRestarts() async throws {
        let db = try await projectionDatabase("chaos")
        let connection = try await db.connect()
        // 20,000 events: 5,000 orders of 4 events, appended in transactions of 50 orders.
        for chunk in 0..<100 {
            try await connection.transaction { tx in
                for order in 0..<50 {
                    try await EventStore().append(OrderWorkload.events(orderID: "o\(chunk)-\(order)"), expected: .noStream, in: tx)
                }
            }
        }
        let last = try await head(on: connection)
        let projections: [any Projection] = [CounterProjection(name: "counter"), OrderOverviewProjection()]
        let options = testOptions { $0.batchSize = 500 }
        var running = try RunningWorker(db, projections, options: options)
        var terminations = 0
        var restarts = 0
        func caughtUp() async throws -> Bool {
            let counter = try await checkpoint("counter", on: connection)
            let overview = try await checkpoint("order_overview_v1", on: connection)
            return counter == last && overview == last
        }
        while try await !caughtUp() {
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...80)))
            let killed = try await connection.query(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'projectionist'"
            )[0].decode(Int64.self, at: 0)
            terminations += Int(killed)
            if terminations > 0 && restarts < 3 && Bool.random() {
                await running.stop()
                running = try RunningWorker(db, projections, options: options)
                restarts += 1
            }
        }
        await running.stop()
        print("chaos: \(terminations) backends terminated, \(restarts) worker restarts")
        #expect(terminations > 0)
        let numbers = try await CounterProjection.numbers("counter", on: connection)
        #expect(numbers.n == 20_000)
        #expect(numbers.rows == 20_000)
        #expect(numbers.distinct == 20_000)
        #expect(try await OrderWorkload.oracleDifferences(on: connection) == 0)
    }

    @Test("a poison event: stop parks the projection at it, skip dead-letters it; the other projection is unaffected")
    func poison() async throws {
        let db = try await projectionDatabase("poison")
        let connection = try await db.connect()
        let store = EventStore()
        let poison = Event(aggregateType: "Order", aggregateID: "p", eventType: "Poison", payload: Array("{}".utf8))
        var positions: [Int64] = []
        try await connection.transaction { tx in
            positions += try await store.append(OrderWorkload.events(orderID: "a", lines: 1), expected: .noStream, in: tx).globalPositions
            positions += try await store.append([poison], expected: .noStream, in: tx).globalPositions
            positions += try await store.append(OrderWorkload.events(orderID: "b", lines: 1), expected: .noStream, in: tx).globalPositions
        }
        let poisonPosition = positions[3]
        let running = try RunningWorker(db, [
            CounterProjection(name: "stopper", onError: .stop, poisonType: "Poison"),
            CounterProjection(name: "skipper", onError: .skip, poisonType: "Poison"),
            CounterProjection(name: "healthy"),
        ])
        try await eventually("stopper parks, skipper and healthy reach the head") {
            let stopped = running.status("stopper")?.state == .failed
            let skipper = try await checkpoint("skipper", on: connection)
            let healthy = try await checkpoint("healthy", on: connection)
            return stopped && skipper == positions.last! && healthy == positions.last!
        }
        let stopper = try #require(running.status("stopper"))
        #expect(stopper.position == poisonPosition - 1)
        let error = try #require(stopper.lastError)
        #expect(error.contains("position \(poisonPosition)"))
        #expect(error.contains(poison.eventID.uuidString.lowercased()))
        #expect(error.contains("Poison"))
        #expect(error.contains("22012"))  // division by zero
        // The good prefix before the poison event committed; nothing after it.
        #expect(try await checkpoint("stopper", on: connection) == poisonPosition - 1)
        #expect(try await CounterProjection.numbers("stopper", on: connection).n == 3)
        let row = try await connection.query("SELECT state, last_error FROM consumer_checkpoints WHERE consumer_name = 'stopper'")[0]
        #expect(try row.decode(String.self, at: 0) == "failed")
        #expect(try row.decode(String.self, at: 1).contains("position \(poisonPosition)"))

        #expect(try await CounterProjection.numbers("skipper", on: connection).n == 6)
        let letters = try await connection.query(
            "SELECT global_position, event_id::text, event_type, error FROM consumer_dead_letters WHERE consumer_name = 'skipper'")
        #expect(letters.count == 1)
        #expect(try letters[0].decode(Int64.self, at: 0) == poisonPosition)
        #expect(try letters[0].decode(String.self, at: 1) == poison.eventID.uuidString.lowercased())
        #expect(try letters[0].decode(String.self, at: 2) == "Poison")
        #expect(try await CounterProjection.numbers("healthy", on: connection).n == 7)

        // A rewind past the poison event releases the parked projection without a restart.
        try await ProjectionReset.reset(CounterProjection(name: "stopper"), to: poisonPosition, schema: Schema(), on: connection)
        try await eventually("stopper resumes after the reset") { try await checkpoint("stopper", on: connection) == positions.last! }
        #expect(try await CounterProjection.numbers("stopper", on: connection).n == 6)
        await running.stop()
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
            try await connection.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND state = 'active' AND application_name = 'projectionist'")[0]
                .decode(Int64.self, at: 0) > 0
        }
        for round in 0..<3 {
            let positions = try await appendOrder("next\(round)", lines: 0, on: connection)
            let clock = ContinuousClock()
            let start = clock.now
            try await eventually("eight quick projections apply the new event", timeout: .seconds(5), every: .milliseconds(5)) {
                let row = try await connection.query(
                    "SELECT count(*) FROM consumer_checkpoints WHERE consumer_name LIKE 'quick%' AND last_position >= $1", [positions.last!])
                return try row[0].decode(Int64.self, at: 0) == 8
            }
            let elapsed = clock.now - start
            print("nine projections: round \(round) reached the eight quick ones in \(elapsed)")
            #expect(elapsed < .milliseconds(500))
        }
        await running.stop()
    }
}
