import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// The runner's failure paths that review found defective, each against the real server.
@Suite(.database, .timeLimit(.minutes(2)))
struct FailurePathTests {
    /// A projection that handles only `Poison` events (so the events around them are out of
    /// scope), failing on each with division by zero. Each attempt draws from the sequence
    /// `attempts_NAME` first, which no rollback undoes: it counts the real attempts.
    static func poisonOnly(_ name: String, onError: OnError) throws -> SQLProjection {
        try SQLProjection(
            name: name, aggregateTypes: nil, onError: onError, setup: nil, reset: nil,
            handlers: [
                (eventType: "Poison", statements: ["INSERT INTO counter_log VALUES ($projection, nextval(('attempts_' || $projection)::regclass) / 0)"])
            ])
    }

    /// How many times the poison projection `name` ran its handler.
    static func attempts(_ name: String, on connection: PostgresConnection) async throws -> Int64 {
        let row = try await connection.query("SELECT last_value, is_called FROM attempts_\(name)")[0]
        return try row.decode(Bool.self, at: 1) ? try row.decode(Int64.self, at: 0) : 0
    }

    @Test(
        "a poison event alone in its batch, after an out-of-scope or a dead position: stop parks before it, skip dead-letters it",
        arguments: ["out of scope", "dead"])
    func poisonAlone(_ before: String) async throws {
        let db = try await projectionDatabase("poison_alone")
        let connection = try await db.connect()
        try await connection.execute(script: "CREATE SEQUENCE attempts_stopper; CREATE SEQUENCE attempts_skipper")
        let store = EventStore()
        if before == "dead" {
            try await appendOrder("rolled-back", lines: 0, rollback: true, on: connection)
        } else {
            try await connection.transaction { tx in
                try await store.append(
                    [Event(aggregateType: "Order", aggregateID: "x", eventType: "Other", payload: Array("{}".utf8))], expected: .noStream, in: tx)
            }
        }
        let poison = try await connection.transaction { tx in
            try await store.append(
                [Event(aggregateType: "Order", aggregateID: "p", eventType: "Poison", payload: Array("{}".utf8))], expected: .noStream, in: tx
            ).globalPositions[0]
        }
        // A parked runner tries the event again after the longest backoff: longer than this test looks.
        let running = try RunningWorker(
            db, [try Self.poisonOnly("stopper", onError: .stop), try Self.poisonOnly("skipper", onError: .skip)],
            options: testOptions { $0.maxReconnectDelay = .seconds(30) })
        try await eventually("stopper parks just before the poison event, skipper dead-letters it") {
            let parked = running.status("stopper")?.state == .failed
            let stopper = try await checkpoint("stopper", on: connection)
            let skipper = try await checkpoint("skipper", on: connection)
            return parked && stopper == poison - 1 && skipper == poison
        }
        let row = try await connection.query("SELECT state, last_error FROM consumer_checkpoints WHERE consumer_name = 'stopper'")[0]
        #expect(try row.decode(String.self, at: 0) == "failed")
        #expect(try row.decode(String.self, at: 1).contains("position \(poison)"))
        let letters = try await connection.query("SELECT global_position FROM consumer_dead_letters WHERE consumer_name = 'skipper'")
        #expect(try letters.map { try $0.decode(Int64.self, at: 0) } == [poison])
        // Parked means parked: the event is not re-run while the runner waits (the handler's
        // attempts are counted by a sequence, which its rollbacks do not undo).
        let attempts = try await Self.attempts("stopper", on: connection)
        #expect(attempts >= 1 && attempts <= 8, "attempts before parking: \(attempts)")
        try await Task.sleep(for: .seconds(1))
        #expect(running.status("stopper")?.state == .failed)
        #expect(try await Self.attempts("stopper", on: connection) == attempts, "the parked event was re-run")
        let skipped = try await Self.attempts("skipper", on: connection)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await Self.attempts("skipper", on: connection) == skipped, "the dead-lettered event was re-run")
        await running.stop()
    }

    /// A Swift projection whose handler fails with a real server error of `sqlState` the first
    /// `failures` times (counted by a sequence, which rollbacks do not undo), wrapping it in
    /// `HandlerError` as a Swift handler may.
    struct FlakyProjection: Projection {
        let name: String
        let sqlState: String
        let wrap: Bool
        var onError: OnError { .skip }

        func handle(_ event: PersistedEvent, in transaction: Transaction) async throws {
            do {
                try await transaction.query(
                    "SELECT flaky($1, $2)", [self.name, self.sqlState])
            } catch {
                throw self.wrap ? HandlerError(event: event, error: error) : error
            }
            try await transaction.query("INSERT INTO counter_log VALUES ($1, $2)", [self.name, event.globalPosition])
        }

        static let setupSQL = """
            CREATE TABLE flaky_failures (projection text PRIMARY KEY, remaining int NOT NULL);
            CREATE FUNCTION flaky(p text, state text) RETURNS void LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('flaky_' || p) <= (SELECT remaining FROM flaky_failures WHERE projection = p) THEN
                RAISE EXCEPTION 'flaky failure % of %', currval('flaky_' || p), p USING ERRCODE = state;
              END IF;
            END $$;
            """
    }

    @Test(
        "serialization failures and deadlocks raised in handlers, also wrapped in HandlerError, are retried with backoff, never dead-lettered",
        arguments: [("40001", false), ("40001", true), ("40P01", true)])
    func transientHandlerErrors(_ sqlState: String, _ wrap: Bool) async throws {
        let db = try await projectionDatabase("flaky")
        let connection = try await db.connect()
        try await connection.execute(script: FlakyProjection.setupSQL)
        try await connection.execute(script: "CREATE SEQUENCE flaky_flaky; INSERT INTO flaky_failures VALUES ('flaky', 6)")
        let positions = try await appendOrder("a", lines: 1, on: connection)
        // Fewer retries than failures: a transient error counted as a handler failure would be dead-lettered.
        let running = try RunningWorker(
            db, [FlakyProjection(name: "flaky", sqlState: sqlState, wrap: wrap)], options: testOptions { $0.handlerRetries = 1 })
        try await eventually("applied once the failures stop") { try await checkpoint("flaky", on: connection) == positions.last! }
        await running.stop()
        #expect(try await connection.query("SELECT count(*) FROM consumer_dead_letters")[0].decode(Int64.self, at: 0) == 0)
        let applied = try await connection.query("SELECT count(*), count(DISTINCT position) FROM counter_log WHERE projection = 'flaky'")[0]
        #expect(try applied.decode(Int64.self, at: 0) == 3)
        #expect(try applied.decode(Int64.self, at: 1) == 3)
        #expect(try await connection.query("SELECT last_value FROM flaky_flaky")[0].decode(Int64.self, at: 0) > 6)
    }

    @Test("a handler waiting on a lock past lock_timeout (55P03) is retried until the lock is free, never dead-lettered")
    func lockTimeout() async throws {
        let db = try await projectionDatabase("lock_timeout")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE locked (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        try await connection.query("INSERT INTO locked VALUES (1)")
        let holder = try await db.connect()
        try await holder.query("BEGIN")
        try await holder.query("SELECT * FROM locked WHERE id = 1 FOR UPDATE")
        let positions = try await appendOrder("a", lines: 0, on: connection)
        let projection = try SQLProjection(
            name: "locker", aggregateTypes: nil, onError: .skip, setup: nil, reset: nil,
            handlers: [(eventType: "OrderPlaced", statements: [
                "SELECT set_config('lock_timeout', '50ms', true)",
                "UPDATE locked SET n = n + 1 WHERE id = 1 AND $global_position > 0",
            ])])
        let running = try RunningWorker(db, [projection], options: testOptions { $0.handlerRetries = 1 })
        try await eventually("the handler keeps timing out on the lock") {
            running.status("locker")?.lastError?.contains("55P03") ?? false
        }
        try await Task.sleep(for: .milliseconds(500))
        try await holder.query("COMMIT")
        try await eventually("applied once the lock is free") { try await checkpoint("locker", on: connection) == positions.last! }
        await running.stop()
        #expect(try await connection.query("SELECT count(*) FROM consumer_dead_letters")[0].decode(Int64.self, at: 0) == 0)
        #expect(try await connection.query("SELECT n FROM locked")[0].decode(Int32.self, at: 0) == 1)
    }

    @Test("a standby that stops leaves the owner's state alone")
    func standbyStopKeepsOwnerState() async throws {
        let db = try await projectionDatabase("standby_stop")
        let connection = try await db.connect()
        let positions = try await appendOrder("a", lines: 0, on: connection)
        let owner = try RunningWorker(db, [CounterProjection(name: "counter")])
        try await eventually("the owner is idle at the head") {
            let position = try await checkpoint("counter", on: connection)
            return owner.status("counter")?.state == .idle && position == positions.last!
        }
        let standby = try RunningWorker(db, [CounterProjection(name: "counter")])
        try await eventually("the second instance stands by") { standby.status("counter")?.state == .standby }
        try await eventually("the owner's heartbeat recorded its state") {
            try await connection.query("SELECT state FROM consumer_checkpoints WHERE consumer_name = 'counter'")[0].decode(String?.self, at: 0) == "idle"
        }
        await standby.stop()
        let row = try await connection.query(
            "SELECT state, head_position FROM consumer_checkpoints WHERE consumer_name = 'counter'")[0]
        #expect(try row.decode(String.self, at: 0) == "idle")
        #expect(try row.decode(Int64.self, at: 1) == positions.last!)
        await owner.stop()
        #expect(try await connection.query("SELECT state FROM consumer_checkpoints WHERE consumer_name = 'counter'")[0].decode(String.self, at: 0) == "stopped")
    }

    @Test("the read-ahead connection killed again and again during catch-up: the owner's connection and its batches carry on")
    func readAheadFailures() async throws {
        let db = try await projectionDatabase("read_ahead")
        let connection = try await db.connect()
        let clock = ContinuousClock()
        let started = clock.now
        _ = try await Seeder.seedOrders(8_000, on: connection)
        let last = try await head(on: connection)
        // Batches of 1,000 (a read of up to 10,000 positions): each read lasts long enough to be seen active and killed, on a loaded machine too.
        let running = try RunningWorker(db, [OrderOverviewProjection()], options: testOptions { $0.batchSize = 1_000; $0.headPollInterval = nil })
        // The owner: the session whose batch transaction is tagged with the unit (SessionTag).
        let ownerQuery = """
            SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND application_name ~ '^projectionist [0-9a-f]{16} [0-9]+$'
            """
        var owner: Int32?
        try await eventually("the runner owns the projection") {
            owner = try await connection.query(ownerQuery).first?.decode(Int32.self, at: 0)
            return owner != nil
        }
        var killed = 0
        var transactionErrors: Set<String> = []
        while try await checkpoint("order_overview_v1", on: connection) < last {
            // The read-ahead: a pooled connection reading the log outside the tagged batch
            // transaction (the owner's own reads run inside it, tagged).
            killed += Int(try await connection.query(
                """
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = 'projectionist' AND state = 'active'
                  AND query LIKE '%WHERE global_position > $1 AND global_position <= $3 ORDER BY global_position%'
                """)[0].decode(Int64.self, at: 0))
            if let error = running.status("order_overview_v1")?.lastError { transactionErrors.insert(error) }
            try await Task.sleep(for: .milliseconds(1))  // the read is short: look often
        }
        await running.stop()
        print("read-ahead: \(killed) reader connections terminated; \(last) events in \(clock.now - started)")
        #expect(killed > 0)
        #expect(try await OrderWorkload.oracleDifferences(on: connection) == 0)
        // The batch transactions carried on: none of them failed for the reader's loss.
        #expect(transactionErrors.isEmpty, "\(transactionErrors)")
    }
}

/// Catch-up with several pipelines in flight: a failing batch while the next one is already sent.
@Suite(.database, .timeLimit(.minutes(2)))
struct PipelinesInFlightCatchUpTests {
    @Test("a poison event deep in a catch-up, with and without pipelines in flight: every other event once, the poison dead-lettered", arguments: [true, false])
    func poisonWithPipelinesInFlight(_ inFlight: Bool) async throws {
        let db = try await projectionDatabase("in_flight")
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(1_000, on: connection)
        let poison = try await EventStore().appendInOwnTransaction(
            [Event(aggregateType: "Order", aggregateID: "poison", eventType: "Poison", payload: Array("{}".utf8))],
            expected: .noStream, on: connection)[0]
        _ = try await Seeder.seedOrders(1_000, from: 1_000, on: connection)
        let last = try await head(on: connection)
        let statement = "INSERT INTO counter_log VALUES ($projection, $global_position / CASE WHEN $event_type = 'Poison' THEN 0 ELSE 1 END)"
        let projection = try SQLProjection(
            name: "logger", aggregateTypes: nil, onError: .skip, setup: nil, reset: nil,
            handlers: ["OrderPlaced", "OrderLineAdded", "OrderConfirmed", "Poison"].map { ($0, [statement]) })
        let running = try RunningWorker(db, [projection], options: testOptions { $0.batchSize = 100; $0.pipelinesInFlight = inFlight })
        try await eventually("the projection reaches the head") { try await checkpoint("logger", on: connection) == last }
        await running.stop()
        let numbers = try await CounterProjection.numbers("logger", on: connection)
        #expect(numbers.rows == last - 1)
        #expect(numbers.distinct == last - 1)
        let letters = try await connection.query("SELECT global_position FROM consumer_dead_letters WHERE consumer_name = 'logger'")
        #expect(try letters.map { try $0.decode(Int64.self, at: 0) } == [poison])
    }
}
