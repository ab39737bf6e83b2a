import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// What SIGTERM does (docs/operations.md, "Stopping"): the batch in flight has its statement
/// cancelled on the server and rolls back, the runner records `stopped`, the process exits 0 at
/// once, and the next start applies that batch again, exactly once.
@Suite(.database, .timeLimit(.minutes(2)))
struct ShutdownTests {
    @Test("SIGTERM during a 60 s handler statement: cancelled on the server, rolled back, stopped recorded, exit 0 within seconds; the next start applies the batch once")
    func sigtermCancelsTheBatchInFlight() async throws {
        let db = try await TestDatabase.fresh("shutdown")
        let config = TemporaryFile.write(
            TestDaemonConfig(db).yaml + "\n" + """
                projections:
                  - name: slow_log
                    aggregate_types: [Order]
                    setup: |
                      CREATE TABLE IF NOT EXISTS slow_log (global_position BIGINT NOT NULL);
                      CREATE TABLE IF NOT EXISTS slow_switch (slow BOOLEAN NOT NULL)
                    handlers:
                      OrderPlaced:
                        - INSERT INTO slow_log VALUES ($global_position)
                        - SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM slow_switch) THEN 60 ELSE 0 END)
                """)
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let connection = try await db.connect()
        try await connection.query("INSERT INTO slow_switch VALUES (true)")
        var placed: [Int64] = []
        for order in ["a", "b", "c"] { placed.append(try await appendOrder(order, lines: 1, on: connection)[0]) }
        let head = try await connection.query("SELECT max(global_position) FROM events")[0].decode(Int64.self, at: 0)

        let notify = try NotifySocket()
        defer { notify.close() }
        let daemon = try ProjectionistProcess.start(["run", "--config", config], environment: ["NOTIFY_SOCKET": notify.path])
        try await eventually("the batch sleeps in its handler", timeout: .seconds(30)) {
            try await activeStatements(like: "%pg_sleep(CASE%", on: connection) == 1
        }

        let signalled = ContinuousClock.now
        daemon.signal(SIGTERM)
        let exit = await daemon.finish()
        let took = ContinuousClock.now - signalled
        #expect(exit.status == 0, "stderr: \(exit.stderr)")
        #expect(took < .seconds(15), "SIGTERM took \(took): the statement was waited for, not cancelled")
        // Sent before the exit; the socket's reader thread may not have taken it in yet.
        try await eventually("STOPPING=1 read from the socket", timeout: .seconds(5)) { notify.lines.contains("STOPPING=1") }
        #expect(try await activeStatements(like: "%pg_sleep(CASE%", on: connection) == 0, "the handler's statement still runs on the server")
        #expect(try await connection.query("SELECT count(*) FROM slow_log")[0].decode(Int64.self, at: 0) == 0, "the batch was not rolled back")
        #expect(try await CheckpointStore().position("slow_log", on: connection) == 0)
        let stopped = projectionState(try await statusJSON(config), "slow_log")
        #expect(stopped["state"] as? String == "stopped", "\(stopped)")

        try await connection.query("DELETE FROM slow_switch")
        let again = try ProjectionistProcess.start(["run", "--config", config])
        try await eventually("the next start catches up", timeout: .seconds(30)) {
            try await CheckpointStore().position("slow_log", on: connection) == head
        }
        again.signal(SIGTERM)
        #expect(await again.finish().status == 0)
        let logged = try await connection.query("SELECT global_position FROM slow_log ORDER BY 1").map { try $0.decode(Int64.self, at: 0) }
        #expect(logged == placed, "each OrderPlaced applied exactly once")
    }
}
