import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

@Suite(.database, .runsAlone(.chaos), .timeLimit(.minutes(3)))
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
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND (application_name = 'projectionist' OR application_name LIKE 'projectionist/%' OR application_name LIKE 'projectionist %')"
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
        let stored = try #require(try await record("stopper", on: connection))
        #expect(stored.state == "failed")
        #expect(stored.lastError?.contains("position \(poisonPosition)") == true)

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


    @Test("a poison event deep in a multi-batch catch-up: the batches before it commit, skip loses nothing, stop parks exactly there")
    func poisonInCatchUp() async throws {
        let db = try await projectionDatabase("poison_deep")
        let connection = try await db.connect()
        let store = EventStore()
        var poisonPosition: Int64 = 0
        try await connection.transaction { tx in
            for index in 0..<400 {
                try await store.append(OrderWorkload.events(orderID: "a\(index)", lines: 1), expected: .noStream, in: tx)
                if index == 250 {
                    let poison = Event(aggregateType: "Order", aggregateID: "poison", eventType: "Poison", payload: Array("{}".utf8))
                    poisonPosition = try await store.append([poison], expected: .noStream, in: tx).globalPositions[0]
                }
            }
        }
        let last = try await head(on: connection)
        let options = testOptions { $0.batchSize = 50 }
        let running = try RunningWorker(db, [
            CounterProjection(name: "stopper", onError: .stop, poisonType: "Poison"),
            CounterProjection(name: "skipper", onError: .skip, poisonType: "Poison"),
        ], options: options)
        try await eventually("stopper parks at the poison event, skipper reaches the head") {
            let skipper = try await checkpoint("skipper", on: connection)
            return running.status("stopper")?.state == .failed && skipper == last
        }
        await running.stop()
        #expect(try await checkpoint("stopper", on: connection) == poisonPosition - 1)
        let stopper = try await CounterProjection.numbers("stopper", on: connection)
        #expect(stopper.n == poisonPosition - 1)
        #expect(stopper.distinct == poisonPosition - 1)
        let skipper = try await CounterProjection.numbers("skipper", on: connection)
        #expect(skipper.n == last - 1)
        #expect(skipper.distinct == last - 1)
        #expect(try await connection.query("SELECT count(*) FROM consumer_dead_letters")[0].decode(Int64.self, at: 0) == 1)
    }
}
