import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct ConnectionTests {
    @Test("pg_terminate_backend: the next call fails as connection lost, a new connection works")
    func terminatedBackend() async throws {
        let db = try await TestDatabase.fresh("terminate")
        let victim = try await db.connect()
        let killer = try await db.connect()
        let pid = await victim.backendPID
        try await killer.query("SELECT pg_terminate_backend($1)", [Int32(pid)])
        try await Task.sleep(for: .milliseconds(100))
        let error = try await #require(throws: PostgresError.self) { try await victim.query("SELECT 1") }
        #expect(error.isConnectionLost)
        #expect(error.isTransient)
        #expect(await victim.isConnected == false)
        let fresh = try await db.connect()
        #expect(try await fresh.query("SELECT 1")[0].decode(Int32.self, at: 0) == 1)
    }

    @Test("eight connections in pg_sleep(1) at once finish in under 3 s: the cooperative pool is never blocked", .runsAlone(.timed))
    func noBlockingOfTheCooperativePool() async throws {
        let db = try await TestDatabase.fresh("sleepers")
        var connections: [PostgresConnection] = []
        for _ in 0..<8 { connections.append(try await db.connect()) }
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for connection in connections {
                group.addTask { try await connection.query("SELECT pg_sleep(1)") }
            }
            // The pool stays free for other work while all eight block.
            group.addTask {
                let ticks = clock.now
                try await Task.sleep(for: .milliseconds(50))
                #expect(clock.now - ticks < .milliseconds(500))
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        print("8 × pg_sleep(1) concurrently: \(elapsed)")
        #expect(elapsed < .seconds(3))
    }

    @Test("an unreachable server fails with connectionFailed")
    func unreachable() async throws {
        let error = try await #require(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(
                ConnectionConfiguration(connectionString: "host=127.0.0.1 port=1 dbname=x", connectTimeoutSeconds: 2))
        }
        #expect(error.code == .connectionFailed)
        #expect(error.isTransient)
    }

    @Test("prepared statements run with parameters; preparing a known name again is a no-op")
    func prepared() async throws {
        let db = try await TestDatabase.fresh("prepared")
        let connection = try await db.connect()
        try await connection.prepare("add", "SELECT $1::int8 + $2::int8")
        try await connection.prepare("add", "SELECT $1::int8 + $2::int8")
        let sum = try await connection.queryPrepared("add", [Int64(40), Int64(2)])[0].decode(Int64.self, at: 0)
        #expect(sum == 42)
        #expect(await connection.preparedStatements == ["add"])
    }

    @Test("a script of several statements runs in one call")
    func script() async throws {
        let db = try await TestDatabase.fresh("script")
        let connection = try await db.connect()
        try await connection.execute(script: "CREATE TABLE a (x int); INSERT INTO a VALUES (1), (2); CREATE TABLE b (y int);")
        #expect(try await connection.query("SELECT count(*) FROM a")[0].decode(Int64.self, at: 0) == 2)
        let error = try await #require(throws: PostgresError.self) { try await connection.execute(script: "SELEC 1") }
        #expect(error.sqlState == "42601")
    }
}

@Suite struct QualifiedNameTests {
    @Test("names are parsed and always quoted", arguments: [
        ("events", "\"events\""), ("app.events", "\"app\".\"events\""), ("We\"ird", "\"We\"\"ird\""),
        ("Mixed.Case", "\"Mixed\".\"Case\""),
    ])
    func quoting(input: String, quoted: String) throws {
        #expect(try QualifiedName(parsing: input).quoted == quoted)
    }

    @Test("bad names are refused", arguments: ["", "a.b.c", ".events", "events.", String(repeating: "x", count: 64)])
    func refused(input: String) {
        #expect(throws: PostgresError.self) { try QualifiedName(parsing: input) }
    }
}
