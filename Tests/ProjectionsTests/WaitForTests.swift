import EventStore
import Foundation
import Postgres
@testable import Projections
import TestSupport
import TestTraits
import Testing

/// `projectionist_wait_for` (and `ProjectionWaiter`, which calls it): read your own writes.
@Suite(.database, .runsAlone(.timed), .timeLimit(.minutes(1)))
struct WaitForTests {
    static func setCheckpoint(_ name: String, _ position: Int64, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO consumer_checkpoints (consumer_name, last_position) VALUES ($1, $2)
            ON CONFLICT (consumer_name) DO UPDATE SET last_position = $2
            """, [name, position])
    }

    @Test("true as soon as the checkpoint reaches the position (within its 50 ms poll, well under a second), at once when it already has")
    func returnsWhenReached() async throws {
        let db = try await TestDatabase.migrated("wait_for")
        let waiter = try await db.connect()
        let daemon = try await db.connect()
        try await Self.setCheckpoint("p", 10, on: daemon)
        #expect(try await ProjectionWaiter().wait(for: "p", position: 10, timeout: .seconds(5), on: waiter))
        let clock = ContinuousClock()
        let waiting = Task { try await ProjectionWaiter().wait(for: "p", position: 20, timeout: .seconds(10), on: waiter) }
        try await Task.sleep(for: .milliseconds(300))
        // The daemon moves the checkpoint while the waiter waits: no lock of the waiter's blocks it.
        let moved = clock.now
        try await Self.setCheckpoint("p", 25, on: daemon)
        #expect(try await waiting.value)
        let latency = clock.now - moved
        #expect(latency < .seconds(1), "returned \(latency) after the checkpoint moved")
    }

    @Test("false when the timeout passes first, after about the timeout")
    func timesOut() async throws {
        let db = try await TestDatabase.migrated("wait_for_timeout")
        let connection = try await db.connect()
        try await Self.setCheckpoint("p", 1, on: connection)
        let clock = ContinuousClock()
        let started = clock.now
        let reached = try await connection.query("SELECT projectionist_wait_for('p', 2, interval '300 milliseconds')")[0].decode(Bool.self, at: 0)
        let waited = clock.now - started
        #expect(!reached)
        #expect(waited >= .milliseconds(300) && waited < .seconds(2), "waited \(waited)")
        // A projection without rows has reached nothing.
        #expect(try await !ProjectionWaiter().wait(for: "unknown", position: 0, timeout: .milliseconds(50), on: connection))
    }

    @Test("every partition must reach the position; another projection's rows do not count")
    func partitions() async throws {
        let db = try await TestDatabase.migrated("wait_for_partitions")
        let connection = try await db.connect()
        for (name, position) in [("p#0/2", Int64(30)), ("p#1/2", 10), ("p#x", 5), ("p_other", 1)] {
            try await Self.setCheckpoint(name, position, on: connection)
        }
        #expect(try await ProjectionWaiter().wait(for: "p", position: 10, timeout: .milliseconds(50), on: connection))
        #expect(try await !ProjectionWaiter().wait(for: "p", position: 20, timeout: .milliseconds(50), on: connection))
    }

    @Test("inside a REPEATABLE READ transaction it refuses, naming the isolation level")
    func refusesSnapshots() async throws {
        let db = try await TestDatabase.migrated("wait_for_snapshot")
        let connection = try await db.connect()
        await #expect {
            try await connection.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ") { tx in
                _ = try await ProjectionWaiter().wait(for: "p", position: 1, timeout: .seconds(1), on: tx)
            }
        } throws: { error in
            "\(error)".contains("READ COMMITTED") && "\(error)".contains("repeatable read")
        }
    }
}
