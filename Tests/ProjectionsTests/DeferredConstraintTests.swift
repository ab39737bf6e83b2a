import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// A constraint the server checks only at COMMIT (`DEFERRABLE INITIALLY DEFERRED`) is blamed
/// on the event that broke it, like any handler error.
@Suite(.database, .timeLimit(.minutes(2)))
struct DeferredConstraintTests {
    static let setupSQL = """
        CREATE TABLE fk_parent (id text PRIMARY KEY);
        CREATE TABLE fk_child (position bigint PRIMARY KEY, parent text NOT NULL
            REFERENCES fk_parent DEFERRABLE INITIALLY DEFERRED);
        INSERT INTO fk_parent VALUES ('good1'), ('good2');
        """

    /// Each `Child` event inserts a row whose parent is the event's aggregate; `bad` has none.
    static func projection(_ name: String, onError: OnError) throws -> SQLProjection {
        try SQLProjection(
            name: name, aggregateTypes: nil, onError: onError, setup: nil, reset: nil,
            handlers: [(eventType: "Child", statements: ["INSERT INTO fk_child VALUES ($global_position, $aggregate_id)"])])
    }

    /// Appends good1, bad, good2 in one transaction (so they share a batch).
    static func appendGoodBadGood(on connection: PostgresConnection) async throws -> [Int64] {
        try await connection.transaction { tx in
            var positions: [Int64] = []
            for id in ["good1", "bad", "good2"] {
                positions += try await EventStore().append(
                    [Event(aggregateType: "Order", aggregateID: id, eventType: "Child", payload: Array("{}".utf8))], expected: .noStream,
                    in: tx
                ).globalPositions
            }
            return positions
        }
    }

    @Test("skip: the event breaking a deferred foreign key is dead-lettered, the good ones applied, the checkpoint at the end")
    func skip() async throws {
        let db = try await projectionDatabase("deferred_skip")
        let connection = try await db.connect()
        try await connection.execute(script: Self.setupSQL)
        let positions = try await Self.appendGoodBadGood(on: connection)
        let running = try RunningWorker(db, [try Self.projection("deferred", onError: .skip)])
        try await eventually("the checkpoint passes the bad event", timeout: .seconds(20)) {
            try await checkpoint("deferred", on: connection) == positions[2]
        }
        await running.stop()
        let letters = try await connection.query("SELECT global_position, error FROM consumer_dead_letters WHERE consumer_name = 'deferred'")
        #expect(try letters.map { try $0.decode(Int64.self, at: 0) } == [positions[1]])
        #expect(try letters.first?.decode(String.self, at: 1).contains("fk_child_parent_fkey") == true)
        let applied = try await connection.query("SELECT position FROM fk_child ORDER BY 1").map { try $0.decode(Int64.self, at: 0) }
        #expect(applied == [positions[0], positions[2]])
    }

    @Test("stop: parks just before the event breaking a deferred foreign key, with the first good event applied")
    func stop() async throws {
        let db = try await projectionDatabase("deferred_stop")
        let connection = try await db.connect()
        try await connection.execute(script: Self.setupSQL)
        let positions = try await Self.appendGoodBadGood(on: connection)
        let running = try RunningWorker(db, [try Self.projection("deferred", onError: .stop)])
        try await eventually("parked before the bad event", timeout: .seconds(20)) {
            let row = try await record("deferred", on: connection)
            return row?.state == "failed" && row?.position == positions[1] - 1
        }
        // In memory too; on a loaded machine the lease may lapse meanwhile (standby) and come back,
        // and the runner halts at the same event again.
        try await eventually("the runner reports failed", timeout: .seconds(20)) { running.status("deferred")?.state == .failed }
        #expect(try await record("deferred", on: connection)?.lastError?.contains("position \(positions[1])") == true)
        await running.stop()
        let applied = try await connection.query("SELECT position FROM fk_child ORDER BY 1").map { try $0.decode(Int64.self, at: 0) }
        #expect(applied == [positions[0]])
    }
}
