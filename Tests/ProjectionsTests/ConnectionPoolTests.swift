import Foundation
import Logging
import Postgres
@testable import Projections
import Synchronization
import TestSupport
import TestTraits
import Testing

/// `ConnectionPool` against the real server: the budget, cancellation, connections that broke,
/// and a role's connection limit.
@Suite(.database, .timeLimit(.minutes(2)))
struct ConnectionPoolTests {
    /// Counts shared by the borrowing tasks.
    final class Tally: Sendable {
        let inUse = Mutex((now: 0, peak: 0))
        let serverPeak = Mutex(0)
        let done = Mutex(0)
    }

    static func pool(_ db: TestDatabase, max: Int, connectionString: String? = nil) -> ConnectionPool {
        var logger = Logger(label: "pool-test")
        logger.logLevel = .warning
        let database = ConnectionConfiguration(connectionString: connectionString ?? db.connectionString, applicationName: "pool-test")
        return ConnectionPool(
            database: database, maxConnections: max, backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)), logger: logger)
    }

    static func backends(on connection: PostgresConnection) async throws -> Int {
        Int(try await connection.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pool-test'")[0].decode(Int64.self, at: 0))
    }

    @Test("30 tasks borrowing 10 times each through a pool of 3: never more than 3 at once, on the server too")
    func budget() async throws {
        let db = try await TestDatabase.fresh("pool_budget")
        let observer = try await db.connect()
        let pool = Self.pool(db, max: 3)
        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<30 {
                group.addTask {
                    for _ in 0..<10 {
                        try await pool.withConnection { connection in
                            tally.inUse.withLock { $0 = ($0.now + 1, max($0.peak, $0.now + 1)) }
                            defer { tally.inUse.withLock { $0.now -= 1 } }
                            try await connection.query("SELECT pg_sleep(0.001)")
                        }
                    }
                }
            }
            group.addTask {
                for _ in 0..<50 {
                    let count = try await Self.backends(on: observer)
                    tally.serverPeak.withLock { $0 = max($0, count) }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            try await group.waitForAll()
        }
        #expect(tally.inUse.withLock { $0.peak } <= 3)
        #expect(tally.inUse.withLock { $0.peak } >= 2)
        #expect(tally.serverPeak.withLock { $0 } <= 3)
        #expect(pool.counts.open <= 3)
    }

    @Test("a waiter that is cancelled leaves at once; the connection goes to the next one")
    func cancellation() async throws {
        let db = try await TestDatabase.fresh("pool_cancel")
        let pool = Self.pool(db, max: 1)
        let held = try await pool.lease()
        let waiting = Task { try await pool.withConnection { _ in "served" } }
        try await eventually("it waits") { pool.counts.waiting == 1 }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(pool.counts.waiting == 0)
        await pool.release(held)
        #expect(try await pool.withConnection { _ in "served" } == "served")
        #expect(pool.counts.open == 1)
    }

    @Test("a connection whose backend was terminated while idle is not lent again; one left in a transaction is closed")
    func brokenConnections() async throws {
        let db = try await TestDatabase.fresh("pool_broken")
        let observer = try await db.connect()
        let pool = Self.pool(db, max: 2)
        let first = try await pool.withConnection { await $0.backendPID }
        try await observer.query("SELECT pg_terminate_backend($1)", [first])
        try await eventually("terminated") { try await Self.backends(on: observer) == 0 }
        // The next borrower gets a live connection, not the terminated one.
        let second = try await pool.withConnection { connection in
            try await connection.query("SELECT 1")
            return await connection.backendPID
        }
        #expect(second != first)
        // Left inside a transaction: closed when it comes back.
        try await pool.withConnection { try await $0.query("BEGIN") }
        #expect(pool.counts.open == 0)
        #expect(try await pool.withConnection { try await $0.query("SELECT 1").count } == 1)
    }

    @Test("a role's CONNECTION LIMIT below the budget: waiters are served by returned connections, nobody fails")
    func connectionLimit() async throws {
        let db = try await TestDatabase.fresh("pool_limit")
        let admin = try await db.connect()
        let role = "r_\(db.name)"
        try await admin.query("CREATE ROLE \(role) LOGIN CONNECTION LIMIT 2")
        let pool = Self.pool(db, max: 6, connectionString: "\(db.connectionString) user=\(role)")
        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<5 {
                        try await pool.withConnection { try await $0.query("SELECT pg_sleep(0.005)") }
                        tally.done.withLock { $0 += 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(tally.done.withLock { $0 } == 40)
        #expect(pool.counts.open <= 2)
    }
}
