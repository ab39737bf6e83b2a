import Foundation
import Glibc
import Postgres
import Synchronization
import TestSupport
import TestTraits
import Testing

/// The `PgBouncer` fixture (pgbouncer 1.18, transaction pooling) and what our client does through it.
@Suite(.database, .timeLimit(.minutes(1)))
struct PgBouncerTests {
    @Test("a transaction through pgbouncer runs pipelines of unnamed parameterised statements, two in flight")
    func pipelineInTransaction() async throws {
        let db = try await TestDatabase.fresh("pgbpipeline")
        let direct = try await db.connect()
        try await direct.query("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
        let bouncer = try await PgBouncer.start(for: db)
        defer { bouncer.stop() }
        let client = try await bouncer.connect()
        // libpq's backend pid is the key pgbouncer made up, not the server's: we really go through it.
        let serverPID = try await client.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
        #expect(await client.backendPID != serverPID)

        let (counted, label, total) = try await client.transaction { tx in
            var first = Pipeline()
            for id in 0..<500 { first.append("INSERT INTO items VALUES ($1, $2)", [Int32(id), "item \(id)"]) }
            first.append("SELECT count(*) FROM items")
            var second = Pipeline()
            for id in 500..<1_000 { second.append("INSERT INTO items VALUES ($1, $2)", [Int32(id), "item \(id)"]) }
            second.append("SELECT label FROM items WHERE id = $1", [Int32(777)])
            second.append("SELECT sum(id)::bigint FROM items WHERE id >= $1", [Int32(0)])
            // Both on the wire before either's results are read, as the runtime's pipelines in flight.
            let firstTicket = try await tx.connection.send(first)
            let secondTicket = try await tx.connection.send(second)
            let firstResults = try await tx.connection.results(of: firstTicket)
            let secondResults = try await tx.connection.results(of: secondTicket)
            #expect(firstResults.count == 501 && secondResults.count == 502)
            return (
                try firstResults[500][0].decode(Int64.self, at: 0), try secondResults[500][0].decode(String.self, at: 0),
                try secondResults[501][0].decode(Int64.self, at: 0)
            )
        }
        #expect(counted == 500)
        #expect(label == "item 777")
        #expect(total == 499_500)
        #expect(try await direct.query("SELECT count(*) FROM items")[0].decode(Int64.self, at: 0) == 1_000)

        let (pid, directory) = (bouncer.pid, bouncer.directory)
        bouncer.stop()
        #expect(kill(pid, 0) == -1, "pgbouncer \(pid) still runs after stop()")
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("default_pool_size 1: two clients share one server connection, held per transaction")
    func transactionPooling() async throws {
        let db = try await TestDatabase.fresh("pgbpooling")
        let bouncer = try await PgBouncer.start(for: db, defaultPoolSize: 1)
        defer { bouncer.stop() }
        let a = try await bouncer.connect(applicationName: "client-a")
        let b = try await bouncer.connect(applicationName: "client-b")
        let direct = try await db.connect()
        let pid = "SELECT pg_backend_pid()"
        #expect(try await a.query(pid)[0].decode(Int32.self, at: 0) == b.query(pid)[0].decode(Int32.self, at: 0))
        let backends = try await direct.query(
            """
            SELECT count(*) FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
            """)
        #expect(try backends[0].decode(Int64.self, at: 0) == 1)

        // A session SET stays on the server connection: the other client's next statement sees it.
        try await a.query("SET statement_timeout = '4321ms'")
        #expect(try await Self.setting("statement_timeout", on: b) == "4321ms")
        // application_name is the exception: pgbouncer tracks it per client and restores it.
        try await a.query("SET application_name = 'renamed-a'")
        #expect(try await Self.setting("application_name", on: b) == "client-b")
        #expect(try await Self.setting("application_name", on: a) == "renamed-a")

        // An open transaction keeps the only server connection: b waits until a commits.
        let bFinished = Flag()
        let bQuery = try await a.transaction { tx in
            try await tx.query("SELECT 1")
            let query = Task {
                let value = try await b.query("SELECT 2")[0].decode(Int32.self, at: 0)
                bFinished.value.withLock { $0 = true }
                return value
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(bFinished.value.withLock { $0 } == false, "b ran while a's transaction held the server connection")
            return query
        }
        #expect(try await bQuery.value == 2)
    }

    @Test("set_config(..., true) in a transaction holds for that transaction only, and the server enforces it", .runsAlone(.timed))
    func localSettings() async throws {
        let db = try await TestDatabase.fresh("pgblocal")
        let bouncer = try await PgBouncer.start(for: db)
        defer { bouncer.stop() }
        let client = try await bouncer.connect()
        // Generous inside: on a loaded machine the gap between two statements can pass a second.
        let inside = try await client.transaction { tx in
            let set = try await tx.query("SELECT set_config('idle_in_transaction_session_timeout', '10min', true)")
            #expect(try set[0].decode(String.self, at: 0) == "10min")
            return try await Self.setting("idle_in_transaction_session_timeout", on: tx.connection)
        }
        #expect(inside == "10min")
        #expect(try await Self.setting("idle_in_transaction_session_timeout", on: client) == "0")

        // Idle past its local timeout, the transaction loses its server connection and pgbouncer
        // closes the client ("server conn crashed?"): a lost connection, then a new client works.
        let error = try await #require(throws: PostgresError.self) {
            try await client.transaction { tx in
                try await tx.query("SELECT set_config('idle_in_transaction_session_timeout', '100ms', true)")
                try await Task.sleep(for: .seconds(1))
                try await tx.query("SELECT 1")
            }
        }
        #expect(error.isConnectionLost, "\(error)")
        let again = try await bouncer.connect()
        #expect(try await again.query("SELECT 1")[0].decode(Int32.self, at: 0) == 1)
    }

    @Test("cancelling a transaction's task cancels its statement through pgbouncer, and the client goes on")
    func cancellation() async throws {
        let db = try await TestDatabase.fresh("pgbcancel")
        let direct = try await db.connect()
        try await direct.query("CREATE TABLE t (v int)")
        let bouncer = try await PgBouncer.start(for: db, defaultPoolSize: 1)
        defer { bouncer.stop() }
        let client = try await bouncer.connect()
        let started = AsyncStream.makeStream(of: Void.self)
        let task = Task {
            try await client.transaction { tx in
                try await tx.query("INSERT INTO t VALUES (1)")
                started.continuation.yield()
                try await tx.query("SELECT pg_sleep(30)")
            }
        }
        var iterator = started.stream.makeAsyncIterator()
        await iterator.next()
        // Cancelled while the statement runs on the server (a cancel sent before it starts is not one).
        try await eventually("pg_sleep(30) runs on the server", timeout: .seconds(20)) {
            try await activeStatements(like: "%pg_sleep(30)%", on: direct) == 1
        }
        let begun = ContinuousClock.now
        task.cancel()
        let error = await #expect(throws: PostgresError.self) { try await task.value }
        #expect(error?.sqlState == "57014")
        #expect(ContinuousClock.now - begun < .seconds(5))
        // Rolled back, and the (only) server connection is free again.
        #expect(try await client.query("SELECT count(*) FROM t")[0].decode(Int64.self, at: 0) == 0)
    }

    @Test("a pgbouncer that cannot start fails with its log's tail in the error")
    func failedStart() async throws {
        let db = try await TestDatabase.fresh("pgbfail")
        let error = try await #require(throws: PgBouncerError.self) {
            try await PgBouncer.start(for: db, poolMode: "no-such-mode")
        }
        #expect(error.description.contains("pgbouncer exited"), "\(error)")
        #expect(error.description.contains("pool_mode"), "\(error)")
    }

    static func setting(_ name: String, on connection: PostgresConnection) async throws -> String {
        try await connection.query("SELECT current_setting($1)", [name])[0].decode(String.self, at: 0)
    }
}

private final class Flag: Sendable {
    let value = Mutex(false)
}
