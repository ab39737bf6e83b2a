import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct TransactionTests {
    struct Boom: Error {}

    @Test("commit on return, rollback on a thrown error")
    func commitAndRollback() async throws {
        let db = try await TestDatabase.fresh("tx")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE t (v int)")
        let value = try await connection.transaction { tx in
            try await tx.query("INSERT INTO t VALUES (1)")
            return 42
        }
        #expect(value == 42)
        await #expect(throws: Boom.self) {
            try await connection.transaction { tx in
                try await tx.query("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        let rows = try await connection.query("SELECT v FROM t ORDER BY v").map { try $0.decode(Int32.self, at: 0) }
        #expect(rows == [1])
    }

    @Test("a transaction cancelled mid-way (statement running on the server) leaves no row")
    func cancelledMidway() async throws {
        let db = try await TestDatabase.fresh("txcancel")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE t (v int)")
        let started = AsyncStream.makeStream(of: Void.self)
        let task = Task {
            try await connection.transaction { tx in
                try await tx.query("INSERT INTO t VALUES (1)")
                started.continuation.yield()
                try await tx.query("SELECT pg_sleep(30)")
            }
        }
        var iterator = started.stream.makeAsyncIterator()
        await iterator.next()
        let watcher = try await db.connect()
        // Cancelled while the statement runs on the server (a cancel sent before it starts is not one).
        try await eventually("pg_sleep(30) runs on the server", timeout: .seconds(20)) {
            try await activeStatements(like: "%pg_sleep(30)%", on: watcher) == 1
        }
        let clock = ContinuousClock()
        let begun = clock.now
        task.cancel()
        let error = await #expect(throws: PostgresError.self) { try await task.value }
        #expect(error?.sqlState == "57014")
        #expect(clock.now - begun < .seconds(5))
        // Same connection, next use: clean, nothing committed.
        let count = try await connection.query("SELECT count(*) FROM t")[0].decode(Int64.self, at: 0)
        #expect(count == 0)
        let other = try await db.connect()
        #expect(try await other.query("SELECT count(*) FROM t")[0].decode(Int64.self, at: 0) == 0)
    }

    @Test("a task cancelled before the transaction starts runs nothing")
    func cancelledBeforeStart() async throws {
        let db = try await TestDatabase.fresh("txcancel2")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE t (v int)")
        let task = Task {
            try await Task.sleep(for: .seconds(10))
            try await connection.transaction { tx in try await tx.query("INSERT INTO t VALUES (1)") }
        }
        task.cancel()
        await #expect(throws: (any Error).self) { try await task.value }
        #expect(try await connection.query("SELECT count(*) FROM t")[0].decode(Int64.self, at: 0) == 0)
    }
}
