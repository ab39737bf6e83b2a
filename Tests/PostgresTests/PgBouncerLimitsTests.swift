import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

/// Session features that break behind pgbouncer 1.18 in transaction pooling: the daemon must not
/// rely on them through it. Each test pins the behaviour, so a change of pgbouncer shows here.
@Suite(.database, .timeLimit(.minutes(1)))
struct PgBouncerLimitsTests {
    @Test("a named prepared statement belongs to the server connection, not to the client")
    func preparedStatements() async throws {
        let db = try await TestDatabase.fresh("pgbprepared")
        let bouncer = try await PgBouncer.start(for: db, defaultPoolSize: 1)
        defer { bouncer.stop() }
        let a = try await bouncer.connect()
        let b = try await bouncer.connect()
        try await a.prepare("plus_one", "SELECT $1::int + 1")
        // b never prepared it, yet runs it; preparing it on b fails: it already exists.
        #expect(try await b.queryPrepared("plus_one", [Int32(1)])[0].decode(Int32.self, at: 0) == 2)
        let error = try await #require(throws: PostgresError.self) { try await b.prepare("plus_one", "SELECT $1::int + 1") }
        #expect(error.sqlState == "42P05")
    }

    @Test("a session advisory lock stays with the server connection: every client sharing it holds it")
    func advisoryLocks() async throws {
        let db = try await TestDatabase.fresh("pgbadvisory")
        let bouncer = try await PgBouncer.start(for: db, defaultPoolSize: 1)
        defer { bouncer.stop() }
        let a = try await bouncer.connect()
        let b = try await bouncer.connect()
        let direct = try await db.connect()
        let take = "SELECT pg_try_advisory_lock(42)"
        #expect(try await a.query(take)[0].decode(Bool.self, at: 0))
        #expect(try await b.query(take)[0].decode(Bool.self, at: 0))  // "also owned" by b
        await a.close()
        await b.close()
        #expect(try await direct.query(take)[0].decode(Bool.self, at: 0) == false)  // outlives both clients
    }

    @Test("LISTEN through pgbouncer receives nothing: the notification reaches an unlinked server connection")
    func listen() async throws {
        let db = try await TestDatabase.fresh("pgblisten")
        let bouncer = try await PgBouncer.start(for: db)
        defer { bouncer.stop() }
        let listener = try await bouncer.connect()
        try await listener.listen("wake")
        let direct = try await db.connect()
        try await direct.query("SELECT pg_notify('wake', 'hello')")
        let received = try await withThrowingTaskGroup(of: PostgresNotification?.self) { group in
            group.addTask { try await listener.notifications().first { _ in true } }
            group.addTask {
                try await Task.sleep(for: .milliseconds(500))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        #expect(received == nil)
        try await eventually("pgbouncer logs the notification it could not route", timeout: .seconds(10)) {
            bouncer.log.contains("got packet 'A' from server when not linked")
        }
    }

    @Test("the startup parameter options (e.g. options='-c statement_timeout=5s') is refused")
    func startupOptions() async throws {
        let db = try await TestDatabase.fresh("pgboptions")
        let bouncer = try await PgBouncer.start(for: db)
        defer { bouncer.stop() }
        let configuration = ConnectionConfiguration(
            connectionString: bouncer.connectionString + " options='-c statement_timeout=5s'")
        let error = try await #require(throws: PostgresError.self) { try await PostgresConnection.connect(configuration) }
        #expect(error.message.contains("unsupported startup parameter: options"), "\(error)")
    }
}
