import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

func orderEvent(_ id: String, _ type: String = "OrderPlaced", payload: String = "{}") -> Event {
    Event(aggregateType: "Order", aggregateID: id, eventType: type, payload: Array(payload.utf8))
}

/// The event store's tables in each layout the Swift `EventStore` writes: eventsalsa/store's
/// aggregate columns, its stream columns, and stream columns over a RANGE-partitioned table
/// (60 ranges of 4 positions here, so appends cross ranges; no UNIQUE constraint there: the heads
/// table alone keeps versions unique).
enum StoreLayout: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case aggregate, stream, streamPartitioned

    var schema: Schema {
        var schema = Schema()
        if self != .aggregate {
            schema.layout = .stream
            schema.headsTable = EventLayout.stream.defaultHeadsTable
        }
        if self == .streamPartitioned { schema.partitioning = .native(size: 4, initial: 60) }
        return schema
    }

    var store: EventStore { EventStore(self.schema.eventStore) }
    var testDescription: String { self.rawValue }

    func database(_ label: String) async throws -> TestDatabase {
        try await TestDatabase.migrated("\(label)_\(self.rawValue)", schema: self.schema)
    }
}

@Suite(.database, .timeLimit(.minutes(1)))
struct AppendTests {
    let store = EventStore()

    func count(_ connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SELECT count(*) FROM events")[0].decode(Int64.self, at: 0)
    }

    @Test("noStream creates; a second noStream is a conflict and writes nothing", arguments: StoreLayout.allCases)
    func noStream(_ layout: StoreLayout) async throws {
        let store = layout.store
        let db = try await layout.database("nostream")
        let connection = try await db.connect()
        let result = try await connection.transaction { tx in
            try await store.append([orderEvent("o1"), orderEvent("o1", "OrderLineAdded")], expected: .noStream, in: tx)
        }
        #expect(result.events.map(\.aggregateVersion) == [1, 2])
        #expect(result.version == 2)
        #expect(result.globalPositions[1] == result.globalPositions[0] + 1)
        let error = try await #require(throws: EventStoreError.self) {
            try await connection.transaction { tx in try await store.append([orderEvent("o1")], expected: .noStream, in: tx) }
        }
        #expect(error.code == .versionConflict)
        #expect(try await count(connection) == 2)
        #expect(try await store.currentVersion(type: "Order", id: "o1", on: connection) == 2)
    }

    @Test("exact(n) with a stale n is a conflict naming the actual version; a right n appends", arguments: StoreLayout.allCases)
    func exact(_ layout: StoreLayout) async throws {
        let store = layout.store
        let db = try await layout.database("exact")
        let connection = try await db.connect()
        try await connection.transaction { tx in try await store.append([orderEvent("o1")], expected: .noStream, in: tx) }
        let error = try await #require(throws: EventStoreError.self) {
            try await connection.transaction { tx in try await store.append([orderEvent("o1")], expected: .exact(5), in: tx) }
        }
        #expect(error.code == .versionConflict)
        #expect(error.actualVersion == 1)
        #expect(error.description.contains("Order o1"))
        // exact on an aggregate that does not exist
        await #expect(throws: EventStoreError.self) {
            try await connection.transaction { tx in try await store.append([orderEvent("nobody")], expected: .exact(3), in: tx) }
        }
        let appended = try await connection.transaction { tx in
            try await store.append([orderEvent("o1", "OrderConfirmed")], expected: .exact(1), in: tx)
        }
        #expect(appended.version == 2)
        #expect(try await count(connection) == 2)
    }

    @Test("any always appends, creating the aggregate if needed", arguments: StoreLayout.allCases)
    func any(_ layout: StoreLayout) async throws {
        let store = layout.store
        let db = try await layout.database("any")
        let connection = try await db.connect()
        for round in 1...3 {
            let result = try await connection.transaction { tx in
                try await store.append([orderEvent("o1"), orderEvent("o1")], expected: .any, in: tx)
            }
            #expect(result.events.map(\.aggregateVersion) == [Int64(round * 2 - 1), Int64(round * 2)])
        }
        #expect(try await count(connection) == 6)
        if layout == .streamPartitioned {
            #expect(try await connection.query("SELECT count(DISTINCT tableoid) FROM events")[0].decode(Int64.self, at: 0) == 2)
        }
    }

    @Test("empty and mixed appends are refused before the database is touched")
    func invalid() async throws {
        let db = try await TestDatabase.migrated("invalid")
        let connection = try await db.connect()
        try await connection.transaction { tx in
            let empty = await #expect(throws: EventStoreError.self) { try await store.append([], expected: .any, in: tx) }
            #expect(empty?.code == .invalidAppend)
            let mixed = await #expect(throws: EventStoreError.self) {
                try await store.append([orderEvent("a"), orderEvent("b")], expected: .any, in: tx)
            }
            #expect(mixed?.code == .invalidAppend)
            // The transaction is still healthy: nothing was sent.
            try await tx.query("SELECT 1")
        }
        #expect(try await count(connection) == 0)
    }

    @Test("a duplicate event id is its own error (a partitioned table has no UNIQUE constraint on it)", arguments: [StoreLayout.aggregate, .stream])
    func duplicateEventID(_ layout: StoreLayout) async throws {
        let store = layout.store
        let db = try await layout.database("dupid")
        let connection = try await db.connect()
        var event = orderEvent("o1")
        try await connection.transaction { tx in try await store.append([event], expected: .noStream, in: tx) }
        event.aggregateID = "o2"
        let error = try await #require(throws: EventStoreError.self) {
            try await connection.transaction { tx in try await store.append([event], expected: .noStream, in: tx) }
        }
        #expect(error.code == .duplicateEventID)
    }

    @Test("every field round-trips through append and read", arguments: StoreLayout.allCases)
    func fields(_ layout: StoreLayout) async throws {
        let store = layout.store
        let db = try await layout.database("fields")
        let connection = try await db.connect()
        let created = Date(timeIntervalSince1970: 1_750_000_000.5)
        let event = Event(
            aggregateType: "Order", aggregateID: "o9", eventType: "OrderPlaced", eventVersion: 3,
            payload: [0, 255, 1], metadata: Array(#"{"user": "u1"}"#.utf8), traceID: "t", correlationID: "c",
            causationID: "k", createdAt: created)
        let appended = try await connection.transaction { tx in try await store.append([event], expected: .noStream, in: tx) }
        let read = try await store.readAggregateStream(type: "Order", id: "o9", on: connection).events
        #expect(read == appended.events)
        #expect(read[0].payload == [0, 255, 1])
        #expect(read[0].metadata.map { String(decoding: $0, as: UTF8.self) } == #"{"user": "u1"}"#)
        #expect(read[0].eventVersion == 3)
        #expect(read[0].createdAt == PostgresTimestamp(created))
        #expect(read[0].createdAt.date == created)
    }

    @Test("append throughput, one writer (printed; correctness asserted)")
    func throughput() async throws {
        let db = try await TestDatabase.migrated("throughput")
        let connection = try await db.connect()
        let clock = ContinuousClock()
        var start = clock.now
        for index in 0..<500 {
            try await connection.transaction { tx in try await store.append([orderEvent("single-\(index)")], expected: .noStream, in: tx) }
        }
        let single = clock.now - start
        start = clock.now
        for index in 0..<50 {
            let events = (0..<100).map { _ in orderEvent("batch-\(index)", "OrderLineAdded") }
            try await connection.transaction { tx in try await store.append(events, expected: .noStream, in: tx) }
        }
        let batched = clock.now - start
        print("append throughput: batches of 1: \(Int(500 / single.seconds)) events/s; batches of 100: \(Int(5000 / batched.seconds)) events/s")
        #expect(try await count(connection) == 5500)
    }
}

extension Duration {
    var seconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}
