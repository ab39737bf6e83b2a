import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct ConcurrentAppendTests {
    struct Attempt: Sendable {
        var expected: Int64
        var won: UUID?
        var error: EventStoreError?
    }

    @Test("8 writers racing with exact(current): one winner per version, losers get the conflict, no holes", .serialized, arguments: StoreLayout.allCases)
    func eightWriters(_ layout: StoreLayout) async throws {
        let db = try await layout.database("race")
        let store = layout.store
        let setup = try await db.connect()
        try await setup.transaction { tx in try await store.append([orderEvent("hot")], expected: .noStream, in: tx) }
        let attempts = try await withThrowingTaskGroup(of: [Attempt].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let connection = try await db.connect()
                    var attempts: [Attempt] = []
                    for _ in 0..<25 {
                        let current = try await store.currentVersion(type: "Order", id: "hot", on: connection)
                        let event = orderEvent("hot", "OrderLineAdded")
                        do {
                            try await connection.transaction { tx in
                                try await store.append([event], expected: .exact(current), in: tx)
                            }
                            attempts.append(Attempt(expected: current, won: event.eventID))
                        } catch let error as EventStoreError {
                            attempts.append(Attempt(expected: current, error: error))
                        }
                    }
                    return attempts
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let wins = attempts.filter { $0.won != nil }
        let losses = attempts.filter { $0.error != nil }
        #expect(wins.count + losses.count == 200)
        #expect(losses.allSatisfy { $0.error?.code == .versionConflict })
        #expect(!losses.isEmpty, "the writers should have raced at least once")
        // One winner per expected version.
        #expect(Set(wins.map(\.expected)).count == wins.count)
        let stream = try await store.readAggregateStream(type: "Order", id: "hot", on: setup)
        #expect(stream.events.map(\.aggregateVersion) == Array(1...Int64(wins.count + 1)))
        // Each stored event at version v+1 is the one whose writer expected v.
        let winnerByVersion = Dictionary(uniqueKeysWithValues: wins.map { ($0.expected + 1, $0.won!) })
        for event in stream.events.dropFirst() {
            #expect(winnerByVersion[event.aggregateVersion] == event.eventID)
        }
        #expect(try await store.currentVersion(type: "Order", id: "hot", on: setup) == Int64(wins.count + 1))
    }

    @Test("noStream racing on a new aggregate: exactly one writer creates it", .serialized, arguments: StoreLayout.allCases)
    func createRace(_ layout: StoreLayout) async throws {
        let db = try await layout.database("createrace")
        let store = layout.store
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let connection = try await db.connect()
                    do {
                        try await connection.transaction { tx in try await store.append([orderEvent("new")], expected: .noStream, in: tx) }
                        return true
                    } catch let error as EventStoreError where error.code == .versionConflict {
                        return false
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        let connection = try await db.connect()
        #expect(try await store.readAggregateStream(type: "Order", id: "new", on: connection).events.count == 1)
    }

    @Test("a writer that bypasses aggregate_heads is still caught by the unique constraint")
    func uniqueConstraintCatchesRace() async throws {
        let db = try await TestDatabase.migrated("bypass")
        let store = EventStore()
        let connection = try await db.connect()
        try await connection.transaction { tx in try await store.append([orderEvent("o")], expected: .noStream, in: tx) }
        // Another writer (e.g. an older Go client) inserts version 2 without touching the head.
        try await connection.query(
            "INSERT INTO events (aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload) VALUES ('Order', 'o', 2, gen_random_uuid(), 'X', '\\x7b7d')")
        let error = try await #require(throws: EventStoreError.self) {
            try await connection.transaction { tx in try await store.append([orderEvent("o")], expected: .exact(1), in: tx) }
        }
        #expect(error.code == .versionConflict)
        #expect(error.underlying?.sqlState == "23505")
    }
}
