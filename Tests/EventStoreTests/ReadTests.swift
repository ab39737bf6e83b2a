import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct ReadTests {
    let store = EventStore()

    @Test("version-range reads: from only, to only, both, empty range; unknown aggregate is empty")
    func ranges() async throws {
        let db = try await TestDatabase.migrated("ranges")
        let connection = try await db.connect()
        try await connection.transaction { tx in
            try await store.append((1...5).map { _ in orderEvent("o1", "OrderLineAdded") }, expected: .noStream, in: tx)
        }
        func versions(_ from: Int64?, _ to: Int64?) async throws -> [Int64] {
            try await store.readAggregateStream(type: "Order", id: "o1", from: from, to: to, on: connection).events.map(\.aggregateVersion)
        }
        #expect(try await versions(nil, nil) == [1, 2, 3, 4, 5])
        #expect(try await versions(2, nil) == [2, 3, 4, 5])
        #expect(try await versions(nil, 3) == [1, 2, 3])
        #expect(try await versions(2, 4) == [2, 3, 4])
        #expect(try await versions(4, 2) == [])
        #expect(try await versions(9, nil) == [])
        let unknown = try await store.readAggregateStream(type: "Order", id: "nobody", on: connection)
        #expect(unknown.isEmpty)
        #expect(unknown.version == 0)
        #expect(try await store.readAggregateStream(type: "Invoice", id: "o1", on: connection).isEmpty)
    }

    @Test("readEvents pages through the log in position order; latestPosition is the head")
    func log() async throws {
        let db = try await TestDatabase.migrated("log")
        let connection = try await db.connect()
        #expect(try await store.latestPosition(on: connection) == 0)
        for index in 0..<7 {
            try await connection.transaction { tx in try await store.append([orderEvent("o\(index)")], expected: .noStream, in: tx) }
        }
        let first = try await store.readEvents(after: 0, limit: 4, on: connection)
        let rest = try await store.readEvents(after: first.last!.globalPosition, limit: 4, on: connection)
        #expect(first.count == 4)
        #expect(rest.count == 3)
        #expect((first + rest).map(\.aggregateID) == (0..<7).map { "o\($0)" })
        #expect(try await store.latestPosition(on: connection) == rest.last!.globalPosition)
    }

    @Test("reads and appends give created_at exactly as stored, to the microsecond")
    func exactCreatedAt() async throws {
        let db = try await TestDatabase.migrated("createdat")
        let connection = try await db.connect()
        try await Seeder.seedTicks(1_000, on: connection)
        var appended: [PersistedEvent] = []
        for index in 0..<50 {  // stamped by the database's now()
            appended += try await connection.transaction { tx in
                try await store.append([orderEvent("now\(index)")], expected: .noStream, in: tx)
            }.events
        }
        let stream = try await store.readAggregateStream(type: "Clock", id: "ticks", on: connection).events
        let log = try await store.readEvents(after: 0, limit: 2_000, on: connection)
        #expect(stream.count == 1_000)
        #expect(log.count == 1_050)
        for (what, events) in [("readAggregateStream", stream), ("readEvents", log), ("append", appended)] {
            // The value bound back must equal the stored one: the comparison happens in SQL, exactly.
            var differing: [Int64] = []
            for event in events {
                let same = try await connection.query(
                    "SELECT created_at = $2 FROM events WHERE global_position = $1", [event.globalPosition, event.createdAt])
                if try !same[0].decode(Bool.self, at: 0) { differing.append(event.globalPosition) }
            }
            #expect(differing.count == 0, "\(what): created_at differs at positions \(differing.prefix(5))...")
        }
    }

    @Test("PersistedEvent decodes its columns from any offset; a column that does not decode is named")
    func rowDecoding() async throws {
        let db = try await TestDatabase.migrated("rowdecoding")
        let connection = try await db.connect()
        let appended = try await connection.transaction { tx in
            try await store.append([orderEvent("r1"), orderEvent("r1", "OrderLineAdded")], expected: .noStream, in: tx)
        }
        let columns = PersistedEvent.columns(.aggregate).joined(separator: ", ")
        let rows = try await connection.query(
            "SELECT 'ignored', global_position * 10, \(columns) FROM events ORDER BY global_position")
        let decoded = try rows.map { row in
            try PersistedEvent(row: row, from: 2, globalPosition: try row.decode(Int64.self, at: 1) / 10)
        }
        #expect(decoded == appended.events)
        let wrong = try await connection.query(
            "SELECT \(columns.replacingOccurrences(of: "event_version", with: "'v1'::text")) FROM events LIMIT 1")
        let error = try #require(throws: PostgresError.self) { try PersistedEvent(row: wrong[0], from: 0, globalPosition: 1) }
        #expect(error.message.hasPrefix("events.event_version: "), "\(error)")
    }

    @Test("table names are configurable and schema-qualified names work end to end")
    func qualifiedNames() async throws {
        var schema = Schema()
        schema.eventsTable = try QualifiedName(parsing: "es.Event Log")
        schema.headsTable = try QualifiedName(parsing: "es.heads")
        let db = try await TestDatabase.migrated("qualified", schema: schema)
        let connection = try await db.connect()
        let store = EventStore(schema.eventStore)
        try await connection.transaction { tx in try await store.append([orderEvent("q")], expected: .noStream, in: tx) }
        #expect(try await store.readAggregateStream(type: "Order", id: "q", on: connection).events.count == 1)
        #expect(try await connection.query(#"SELECT count(*) FROM es."Event Log""#)[0].decode(Int64.self, at: 0) == 1)
    }
}

@Suite(.database, .timeLimit(.minutes(1)))
struct NotifyTests {
    func collect(_ listener: PostgresConnection, for duration: Duration) async throws -> [String] {
        try await withThrowingTaskGroup(of: [String]?.self) { group in
            group.addTask {
                var payloads: [String] = []
                for try await notification in listener.notifications() { payloads.append(notification.payload) }
                return payloads
            }
            group.addTask {
                try await Task.sleep(for: duration)
                return nil
            }
            _ = try await group.next()
            group.cancelAll()
            return try await group.next()!!
        }
    }

    @Test("an append's NOTIFY arrives only after commit, never after rollback", arguments: [false, true])
    func notifyOnCommitOnly(viaTrigger: Bool) async throws {
        var schema = Schema()
        schema.notifyTrigger = viaTrigger
        let db = try await TestDatabase.migrated("notify", schema: schema)
        let store = EventStore(EventStoreConfiguration(notifyChannel: viaTrigger ? nil : "projectionist_events"))
        let listener = try await db.connect()
        try await listener.listen("projectionist_events")
        let writer = try await db.connect()

        struct Rollback: Error {}
        await #expect(throws: Rollback.self) {
            try await writer.transaction { tx in
                try await store.append([orderEvent("gone")], expected: .noStream, in: tx)
                throw Rollback()
            }
        }
        // Held open: nothing may arrive before the commit.
        let (appendedSignal, appended) = AsyncStream.makeStream(of: Int64.self)
        let (releaseSignal, release) = AsyncStream.makeStream(of: Void.self)
        let commit = Task {
            try await writer.transaction { tx in
                let result = try await store.append([orderEvent("kept"), orderEvent("kept")], expected: .noStream, in: tx)
                appended.yield(result.globalPositions.last!)
                for await _ in releaseSignal { break }
            }
        }
        var positions = appendedSignal.makeAsyncIterator()
        let last = try #require(await positions.next())
        #expect(try await collect(listener, for: .milliseconds(300)) == [])
        release.yield()
        try await commit.value
        // Sent at the commit; a loaded machine may take a while to deliver it (and any duplicate).
        let payloads = try await collect(listener, for: .seconds(2))
        #expect(payloads == ["\(last)"])
    }
}
