import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// The library side of retrying parked aggregates, as the daemon's `retry_parked` calls it.
@Suite(.database, .timeLimit(.minutes(2)))
struct DeadLetterRetryTests {
    /// Logs every event it applies; an order listed in `retry_poison` fails (22012), one in
    /// `retry_transient` fails with a serialization failure (40001, transient).
    struct LogProjection: Projection {
        var name = "retry_log"
        static let setupSQL = """
            CREATE TABLE retry_log (position bigint NOT NULL);
            CREATE TABLE retry_poison (order_id text PRIMARY KEY);
            CREATE TABLE retry_transient (order_id text PRIMARY KEY);
            CREATE FUNCTION retry_check(id text) RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT FROM retry_transient WHERE order_id = id) THEN
                    RAISE EXCEPTION 'try again' USING ERRCODE = '40001';
                END IF;
                RETURN 1 / CASE WHEN EXISTS (SELECT FROM retry_poison WHERE order_id = id) THEN 0 ELSE 1 END;
            END $$;
            """

        func handle(_ event: PersistedEvent, in transaction: Transaction) async throws {
            try await transaction.query("SELECT retry_check($1)", [event.aggregateID])
            try await transaction.query("INSERT INTO retry_log VALUES ($1)", [event.globalPosition])
        }
    }

    /// A migrated database with `LogProjection`'s tables, orders appended and a checkpoint at the head.
    static func setUp(_ label: String, orders: [String]) async throws -> (TestDatabase, PostgresConnection, [String: [Int64]]) {
        let db = try await TestDatabase.migrated(label)
        let connection = try await db.connect()
        try await connection.execute(script: LogProjection.setupSQL)
        var positions: [String: [Int64]] = [:]
        for order in orders { positions[order] = try await appendOrder(order, on: connection) }
        try await connection.query(
            "INSERT INTO consumer_checkpoints (consumer_name, last_position) VALUES ('retry_log', (SELECT max(global_position) FROM events))")
        return (db, connection, positions)
    }

    /// Parks `order` from its event `from` on, the first letter with `attempts` tries, the last `ago` seconds ago.
    static func park(_ order: String, from: Int = 0, attempts: Int32 = 1, ago: Double = 0, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO consumer_dead_letters (consumer_name, global_position, event_id, event_type, error, aggregate_type, aggregate_id,
                status, attempts, failed_at, last_failed_at)
            SELECT 'retry_log', global_position, event_id, event_type, 'boom', aggregate_type, aggregate_id, 'parked',
                CASE WHEN rank = 1 THEN $2 ELSE 0 END, now() - make_interval(secs => $3),
                CASE WHEN rank = 1 THEN now() - make_interval(secs => $3) END
            FROM (SELECT *, row_number() OVER (ORDER BY global_position) AS rank FROM events WHERE aggregate_id = $1
                  ORDER BY global_position OFFSET $4) AS e
            """, [order, attempts, ago, Int64(from)])
    }

    static func logged(_ connection: PostgresConnection) async throws -> [Int64] {
        try await connection.query("SELECT position FROM retry_log ORDER BY position").map { try $0.decode(Int64.self, at: 0) }
    }

    @Test("dueAggregates: due once base × 2^(attempts − 1) passed since the first parked letter last failed, capped at an hour")
    func due() async throws {
        let (_, connection, _) = try await Self.setUp("retry_due", orders: ["a", "b", "c", "d", "e", "f"])
        try await Self.park("a", attempts: 1, ago: 5, on: connection)  // 10 s: not yet
        try await Self.park("b", attempts: 1, ago: 15, on: connection)  // 10 s: due
        try await Self.park("c", attempts: 3, ago: 30, on: connection)  // 40 s: not yet
        try await Self.park("d", attempts: 3, ago: 50, on: connection)  // 40 s: due
        try await Self.park("e", attempts: 40, ago: 3500, on: connection)  // capped at 1 h: not yet
        try await Self.park("f", from: 1, attempts: 200, ago: 3700, on: connection)  // capped at 1 h: due
        let due = try await DeadLetterRetry.dueAggregates(unit: "retry_log", base: .seconds(10), schema: Schema(), on: connection)
        #expect(due == [AggregateKey(type: "Order", id: "b"), AggregateKey(type: "Order", id: "d"), AggregateKey(type: "Order", id: "f")])
        let all = try await DeadLetterRetry.parkedAggregates(unit: "retry_log", schema: Schema(), on: connection)
        #expect(all.map(\.id) == ["a", "b", "c", "d", "e", "f"], "in the order they were parked")
    }

    @Test("two retries of one unit at once apply every parked event exactly once")
    func concurrentRetriesApplyOnce() async throws {
        let (db, connection, positions) = try await Self.setUp("retry_once", orders: ["a", "b", "c"])
        for order in ["a", "b", "c"] { try await Self.park(order, on: connection) }
        let outcomes = try await withThrowingTaskGroup(of: DeadLetterRetry.Outcome.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    let own = try await db.connect()
                    return try await DeadLetterRetry.retry(
                        projection: LogProjection(), unit: "retry_log", schema: Schema(), decryptor: nil, on: own)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let applied = outcomes.flatMap(\.results).flatMap(\.applied)
        #expect(applied.sorted() == positions.values.flatMap { $0 }.sorted(), "each letter applied by one retry")
        #expect(try await Self.logged(connection) == positions.values.flatMap { $0 }.sorted())
        let left = try await connection.query("SELECT count(*) FROM consumer_dead_letters")[0].decode(Int64.self, at: 0)
        #expect(left == 0)
    }

    @Test("a transient failure is no attempt: the retry throws and the letters stay as they were; `aggregates` limits the retry")
    func transientIsRethrown() async throws {
        let (_, connection, positions) = try await Self.setUp("retry_transient", orders: ["a", "b"])
        try await Self.park("a", on: connection)
        try await Self.park("b", on: connection)
        try await connection.query("INSERT INTO retry_transient VALUES ('a')")
        await #expect(throws: (any Error).self) {
            try await DeadLetterRetry.retry(projection: LogProjection(), unit: "retry_log", schema: Schema(), decryptor: nil, on: connection)
        }
        let attempts = try await connection.query("SELECT max(attempts) FROM consumer_dead_letters WHERE aggregate_id = 'a'")[0]
            .decode(Int32.self, at: 0)
        #expect(attempts == 1)
        let only = try await DeadLetterRetry.retry(
            projection: LogProjection(), unit: "retry_log", aggregates: [AggregateKey(type: "Order", id: "b")], schema: Schema(), decryptor: nil,
            on: connection)
        #expect(only.results.map(\.aggregate.id) == ["b"] && only.allApplied)
        #expect(try await Self.logged(connection) == positions["b"])
    }

    @Test("AggregateReset refuses a projection that does not reset aggregates, changing nothing")
    func resetNeedsResetAggregate() async throws {
        let (_, connection, _) = try await Self.setUp("retry_reset_refused", orders: ["a"])
        let error = await #expect(throws: AggregateReset.NotSupported.self) {
            try await AggregateReset.reset(LogProjection(), aggregate: AggregateKey(type: "Order", id: "a"), schema: Schema(), decryptor: nil, on: connection)
        }
        #expect(error?.description.contains("projections.retry_log.reset_aggregate") == true)
        #expect(try await Self.logged(connection).isEmpty)
    }
}
