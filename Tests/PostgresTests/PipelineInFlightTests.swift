import Postgres
import TestSupport
import TestTraits
import Testing

/// Several pipelines in flight on one connection: sent before the previous one's results are read.
@Suite(.database, .timeLimit(.minutes(2)))
struct PipelineInFlightTests {
    @Test("two pipelines in flight in one transaction: both apply in send order; results read in any order")
    func twoInFlight() async throws {
        let db = try await TestDatabase.fresh("inflight")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE seq (n bigserial PRIMARY KEY, v int NOT NULL)")
        try await connection.transaction { tx in
            var first = Pipeline()
            var second = Pipeline()
            for value in 0..<500 { first.append("INSERT INTO seq (v) VALUES ($1) RETURNING n", [Int32(value)]) }
            for value in 500..<1_000 { second.append("INSERT INTO seq (v) VALUES ($1) RETURNING n", [Int32(value)]) }
            let one = try await tx.connection.send(first)
            let two = try await tx.connection.send(second)
            // Asking for the second first: the first's results are kept for its own read.
            let secondResults = try await tx.connection.results(of: two)
            let firstResults = try await tx.connection.results(of: one)
            #expect(try firstResults.map { try $0[0].decode(Int64.self, at: 0) } == Array(1...500))
            #expect(try secondResults.map { try $0[0].decode(Int64.self, at: 0) } == Array(501...1_000))
            // Both read: plain statements work again.
            #expect(try await tx.query("SELECT count(*) FROM seq")[0].decode(Int64.self, at: 0) == 1_000)
        }
        let values = try await connection.query("SELECT v FROM seq ORDER BY n").map { try $0.decode(Int32.self, at: 0) }
        #expect(values == Array(0..<1_000))
    }

    @Test("an error in the first pipeline aborts the transaction: the second fails with 25P02, nothing commits, the connection recovers")
    func errorAbortsLater() async throws {
        let db = try await TestDatabase.fresh("inflight_error")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE t (v int NOT NULL)")
        var errors: [PostgresError] = []
        do {
            try await connection.transaction { tx in
                var first = Pipeline()
                first.append("INSERT INTO t VALUES (1)")
                first.append("SELECT 1 / 0")
                var second = Pipeline()
                second.append("INSERT INTO t VALUES (2)")
                let one = try await tx.connection.send(first, discardingResults: true)
                let two = try await tx.connection.send(second, discardingResults: true)
                for ticket in [one, two] {
                    do { try await tx.connection.results(of: ticket) } catch let error as PostgresError { errors.append(error) }
                }
                throw errors[0]
            }
            Issue.record("the transaction must fail")
        } catch let error as PostgresError {
            #expect(error.sqlState == "22012")
        }
        #expect(errors.map(\.sqlState) == ["22012", "25P02"])
        #expect(errors.first?.statementIndex == 1)
        #expect(try await connection.query("SELECT count(*) FROM t")[0].decode(Int64.self, at: 0) == 0)
        #expect(await connection.isConnected)
    }

    @Test("a ticket is read once; a plain statement while a pipeline is in flight is refused")
    func misuse() async throws {
        let db = try await TestDatabase.fresh("inflight_misuse")
        let connection = try await db.connect()
        var pipeline = Pipeline()
        pipeline.append("SELECT 1")
        let ticket = try await connection.send(pipeline)
        await #expect(throws: PostgresError.self) { try await connection.query("SELECT 2") }
        #expect(try await connection.results(of: ticket).count == 1)
        let again = await #expect(throws: PostgresError.self) { try await connection.results(of: ticket) }
        #expect(again?.code == .usage)
        #expect(try await connection.query("SELECT 3")[0].decode(Int32.self, at: 0) == 3)
    }
}
