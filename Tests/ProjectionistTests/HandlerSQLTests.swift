import Foundation
import Glibc
import Postgres
import Projections
@testable import ProjectionistApp
import TestSupport
import TestTraits
import Testing

/// Broken handler SQL is found before it runs: `migrate` and `check` have the server parse every
/// handler statement, and `wait` stops at a projection that failed.
@Suite(.database, .timeLimit(.minutes(2)))
struct HandlerSQLTests {
    static func config(_ db: TestDatabase, handlers: String, setup: String = "CREATE TABLE IF NOT EXISTS seen (order_id text PRIMARY KEY)")
        -> String
    {
        TemporaryFile.write(
            """
            \(TestDaemonConfig(db).yaml)
            projections:
              - name: fine
                setup: CREATE TABLE IF NOT EXISTS fine (n bigint)
                handlers:
                  OrderPlaced: INSERT INTO fine VALUES ($global_position)
              - name: orders_seen
                setup: \(setup)
                handlers:
            \(handlers)
            """)
    }

    static func tables(on connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0].decode(Int64.self, at: 0)
    }

    @Test("migrate refuses a handler the server cannot parse (a typo, a missing table) with 78 naming projection, handler and message, and commits nothing")
    func migrateRefusesBrokenHandlers() async throws {
        let db = try await TestDatabase.fresh("handler_sql_migrate")
        let config = Self.config(
            db,
            handlers: """
                      OrderPlaced: INSRT INTO seen VALUES ($aggregate_id)
                      OrderConfirmed:
                        - INSERT INTO seen VALUES ($aggregate_id) ON CONFLICT DO NOTHING
                        - UPDATE no_such_table SET x = 1 WHERE id = $aggregate_id
                """)
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(output.status == 78, "stdout: \(output.stdout) stderr: \(output.stderr)")
        #expect(output.stderr.contains("projection orders_seen, handler OrderPlaced"), "\(output.stderr)")
        #expect(output.stderr.contains("syntax error at or near \"INSRT\""), "\(output.stderr)")
        #expect(output.stderr.contains("projections[1].handlers.OrderConfirmed[1]"), "\(output.stderr)")
        #expect(output.stderr.contains("relation \"no_such_table\" does not exist"), "\(output.stderr)")
        #expect(!output.stderr.contains("projection fine"), "the good projection is not blamed: \(output.stderr)")
        let connection = try await db.connect()
        #expect(try await Self.tables(on: connection) == 0, "one transaction: nothing committed")
    }

    @Test("migrate accepts handlers over tables its setup creates in the same run, with typed parameters")
    func migrateAcceptsGoodHandlers() async throws {
        let db = try await TestDatabase.fresh("handler_sql_good")
        let config = Self.config(
            db,
            handlers: """
                      OrderPlaced: |
                        INSERT INTO seen VALUES ($aggregate_id || ($payload->>'customer_id') || $global_position::text || $created_at::text)
                        ON CONFLICT DO NOTHING
                """)
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(output.status == 0, "\(output.stderr)")
    }

    @Test("check: 0 and nothing changed when all is well; 78 naming the handler when not; the database is left as it was either way")
    func check() async throws {
        let db = try await TestDatabase.fresh("handler_sql_check")
        let good = Self.config(db, handlers: "      OrderPlaced: INSERT INTO seen VALUES ($aggregate_id) ON CONFLICT DO NOTHING")
        let bad = Self.config(db, handlers: "      OrderPlaced: INSERT INTO seen (no_column) VALUES ($aggregate_id)")
        defer { TemporaryFile.remove(good); TemporaryFile.remove(bad) }
        let connection = try await db.connect()

        let fresh = try await ProjectionistProcess.run(["check", "--config", good])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(fresh.stdout.contains("2 handler statement(s)"), "\(fresh.stdout)")
        #expect(try await Self.tables(on: connection) == 0, "check rolled back: no table created")

        let refused = try await ProjectionistProcess.run(["check", "--config", bad])
        #expect(refused.status == 78)
        #expect(refused.stderr.contains("projection orders_seen, handler OrderPlaced"), "\(refused.stderr)")
        #expect(refused.stderr.contains("column \"no_column\" of relation \"seen\" does not exist"), "\(refused.stderr)")

        // Against a migrated database: same verdicts, still nothing changed.
        #expect(try await ProjectionistProcess.run(["migrate", "--config", good]).status == 0)
        let before = try await Self.tables(on: connection)
        #expect(try await ProjectionistProcess.run(["check", "--config", good]).status == 0)
        #expect(try await ProjectionistProcess.run(["check", "--config", bad]).status == 78)
        #expect(try await Self.tables(on: connection) == before)
    }

    @Test("wait exits 1 at once naming a projection that is failed, with its last error")
    func waitStopsAtAFailedProjection() async throws {
        let db = try await TestDatabase.fresh("handler_sql_wait")
        let config = Self.config(
            db, handlers: "      OrderPlaced: INSERT INTO seen VALUES ($aggregate_id)",
            setup: "CREATE TABLE IF NOT EXISTS seen (order_id text PRIMARY KEY CONSTRAINT no_poison CHECK (order_id NOT LIKE 'poison%'))")
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        try await appendOrders(3, prefix: "good", on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
        let caughtUp = try await ProjectionistProcess.run(["wait", "orders_seen", "fine", "--timeout", "60s", "--config", config])
        #expect(caughtUp.status == 0, "\(caughtUp.stderr)")

        try await appendOrder("poison1", on: connection)
        let clock = ContinuousClock()
        let started = clock.now
        let failed = try await ProjectionistProcess.run(["wait", "orders_seen", "--timeout", "90s", "--config", config])
        let took = clock.now - started
        #expect(failed.status == 1, "stdout: \(failed.stdout) stderr: \(failed.stderr)")
        #expect(failed.stderr.contains("projection orders_seen is failed"), "\(failed.stderr)")
        #expect(failed.stderr.contains("no_poison"), "the last error is shown: \(failed.stderr)")
        #expect(took < .seconds(60), "it did not wait out its timeout: \(took)")
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
    }

    @Test("the failure wait reports: the first failed unit among those not there yet, with partition, position and error")
    func failureMessage() {
        let rows = [
            StatusReport.Row(name: "p", partition: "0/2", position: 10, lag: 0, state: .idle),
            StatusReport.Row(name: "p", partition: "1/2", position: 4, lag: 6, state: .failed, error: "boom [23514]"),
        ]
        #expect(WaitCommand.failure(rows)?.hasPrefix("projection p (partition 1/2) is failed at position 4: boom [23514].") == true)
        #expect(WaitCommand.failure([rows[0]]) == nil)
    }
}
