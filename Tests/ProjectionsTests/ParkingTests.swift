import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// `on_error: park`: a failing event parks its aggregate (it and the aggregate's later events
/// become dead letters, in order), every other aggregate goes on, the checkpoint reaches the head.
@Suite(.database, .timeLimit(.minutes(3)))
struct ParkingTests {
    /// Orders reference a customer (a foreign key); an order's lines count up and log their
    /// positions, so that an event applied twice or out of order shows.
    static let setupSQL = """
        CREATE TABLE park_customers (id text PRIMARY KEY);
        CREATE TABLE park_orders (id text PRIMARY KEY, customer text NOT NULL REFERENCES park_customers,
            lines int NOT NULL DEFAULT 0, applied bigint[] NOT NULL);
        INSERT INTO park_customers VALUES ('c1');
        """

    static func projection(_ name: String = "orders", partitions: Int = 1) throws -> SQLProjection {
        try SQLProjection(
            name: name, aggregateTypes: ["Order"], onError: .park, setup: nil, reset: nil,
            handlers: [
                (
                    eventType: "OrderPlaced",
                    statements: [
                        "INSERT INTO park_orders (id, customer, applied) VALUES ($aggregate_id, $payload->>'customer', ARRAY[$global_position])"
                    ]
                ),
                (
                    eventType: "LineAdded",
                    statements: [
                        "UPDATE park_orders SET lines = lines + 1, applied = applied || $global_position WHERE id = $aggregate_id"
                    ]
                ),
            ], partitions: partitions)
    }

    struct Letter: Equatable {
        var unit: String
        var position: Int64
        var status: String
        var attempts: Int32
        var error: String
    }

    static func letters(on connection: PostgresConnection) async throws -> [Letter] {
        try await connection.query(
            "SELECT consumer_name, global_position, status, attempts, error FROM consumer_dead_letters ORDER BY global_position"
        ).map {
            Letter(
                unit: try $0.decode(String.self, at: 0), position: try $0.decode(Int64.self, at: 1), status: try $0.decode(String.self, at: 2),
                attempts: try $0.decode(Int32.self, at: 3), error: try $0.decode(String.self, at: 4))
        }
    }

    @Test("a foreign-key violation parks one order: its later lines park too, 80 others apply exactly once, the checkpoint reaches the head")
    func parksOneAggregate() async throws {
        let db = try await projectionDatabase("park_one")
        let connection = try await db.connect()
        try await connection.execute(script: Self.setupSQL)
        let ids = (0..<81).map { "o\($0)" }
        let positions = try await ParkingWorkload.appendOrders(ids, bad: ["o40"], lines: 4, on: connection)
        let running = try RunningWorker(db, [try Self.projection()])
        let last = try await head(on: connection)
        try await eventually("the checkpoint reaches the head", timeout: .seconds(60)) {
            try await checkpoint("orders", on: connection) == last
        }
        let letters = try await Self.letters(on: connection)
        #expect(letters.map(\.position) == positions["o40"])
        #expect(letters.allSatisfy { $0.status == "parked" && $0.unit == "orders" })
        #expect(letters.map(\.attempts) == [1, 0, 0, 0, 0])
        #expect(letters.first?.error.contains("23503") == true)
        #expect(letters.dropFirst().allSatisfy { $0.error.contains("Order/o40") && $0.error.contains("\(positions["o40"]![0])") })
        var expected = positions
        expected["o40"] = nil
        #expect(try await ParkingWorkload.applied(on: connection) == expected)
        try await eventually("the board counts one parked aggregate, the state idle") {
            running.status("orders")?.parkedAggregates == 1 && running.status("orders")?.state == .idle
        }

        // New events of the parked order park too; other orders' apply.
        var more: [String: [Int64]] = [:]
        for id in ["o40", "o7"] { more[id] = [try await ParkingWorkload.addLine(id, on: connection)] }
        let newHead = try await head(on: connection)
        try await eventually("the new events are passed", timeout: .seconds(20)) {
            try await checkpoint("orders", on: connection) == newHead
        }
        #expect(try await Self.letters(on: connection).map(\.position) == positions["o40"]! + more["o40"]!)
        #expect(try await ParkingWorkload.applied(on: connection)["o7"] == positions["o7"]! + more["o7"]!)
        await running.stop()
    }

    @Test("the parked set is reloaded when parked_version moves: letters deleted and the version raised unpark the aggregate")
    func reloadsOnVersion() async throws {
        let db = try await projectionDatabase("park_reload")
        let connection = try await db.connect()
        try await connection.execute(script: Self.setupSQL)
        let first = try await ParkingWorkload.appendOrders(["a", "b"], bad: ["a"], lines: 1, on: connection)
        let running = try RunningWorker(db, [try Self.projection()])
        var last = try await head(on: connection)
        try await eventually("caught up", timeout: .seconds(30)) { try await checkpoint("orders", on: connection) == last }
        #expect(try await Self.letters(on: connection).map(\.position) == first["a"])

        // What a discard does: the letters go and the version moves, in one transaction.
        try await connection.transaction { tx in
            try await tx.query("INSERT INTO park_customers VALUES ('nobody')")
            try await tx.query("DELETE FROM consumer_dead_letters WHERE consumer_name = 'orders'")
            let (sql, parameters) = DeadLetterStore().bumpStatement("orders")
            try await tx.query(sql, parameters)
        }
        let again = try await ParkingWorkload.appendOrders(["a"], bad: [], lines: 0, on: connection)
        last = try await head(on: connection)
        try await eventually("caught up again", timeout: .seconds(30)) { try await checkpoint("orders", on: connection) == last }
        #expect(try await Self.letters(on: connection).isEmpty)
        // The new OrderPlaced of `a` applied (its earlier events were discarded, never applied).
        #expect(try await ParkingWorkload.applied(on: connection)["a"] == again["a"])
        try await eventually("nothing parked on the board") { running.status("orders")?.parkedAggregates == 0 }
        await running.stop()
    }

    @Test("partitions and two instances: the aggregate parks in its own unit, whichever instance owns it; the others apply")
    func partitionsAndInstances() async throws {
        let db = try await projectionDatabase("park_partitions")
        let connection = try await db.connect()
        try await connection.execute(script: Self.setupSQL)
        let ids = (0..<40).map { "p\($0)" }
        let positions = try await ParkingWorkload.appendOrders(ids, bad: ["p3", "p17"], lines: 2, on: connection)
        let projection = try Self.projection("porders", partitions: 4)
        let one = try RunningWorker(db, [projection])
        let two = try RunningWorker(db, [projection])
        let last = try await head(on: connection)
        let units = WorkUnit.units(of: projection).map(\.name)
        try await eventually("every partition reaches the head", timeout: .seconds(60)) {
            for unit in units where try await checkpoint(unit, on: connection) != last { return false }
            return true
        }
        let letters = try await Self.letters(on: connection)
        #expect(Set(letters.map(\.position)) == Set(positions["p3"]! + positions["p17"]!))
        // Each letter sits in the unit its aggregate hashes to.
        let expectedUnits = try await connection.query(
            """
            SELECT d.global_position, 'porders#' || \(WorkUnit.partitionExpression(count: "4", layout: .aggregate)) || '/4'
            FROM consumer_dead_letters d
            """
        ).map { (try $0.decode(Int64.self, at: 0), try $0.decode(String.self, at: 1)) }
        for (position, unit) in expectedUnits {
            #expect(letters.first { $0.position == position }?.unit == unit)
        }
        var expected = positions
        expected["p3"] = nil
        expected["p17"] = nil
        #expect(try await ParkingWorkload.applied(on: connection) == expected)
        let counts = try await DeadLetterStore().parkedCounts(units, on: connection)
        #expect(counts.values.reduce(0, +) == 2)
        await one.stop()
        await two.stop()
    }
}
