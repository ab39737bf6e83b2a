import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(2)))
struct PipelineTests {
    @Test("10,000 parameterized INSERTs in one pipeline land completely and in order")
    func tenThousandInOrder() async throws {
        let db = try await TestDatabase.fresh("pipeline")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE seq (n bigserial PRIMARY KEY, v int NOT NULL, label text)")
        var pipeline = Pipeline()
        for value in 0..<10_000 {
            pipeline.append("INSERT INTO seq (v, label) VALUES ($1, $2) RETURNING n", [Int32(value), "row \(value)"])
        }
        let clock = ContinuousClock()
        let start = clock.now
        let results = try await connection.execute(pipeline)
        let pipelined = clock.now - start
        #expect(results.count == 10_000)
        #expect(try results.last?[0].decode(Int64.self, at: 0) == 10_000)
        let values = try await connection.query("SELECT v FROM seq ORDER BY n").map { try $0.decode(Int32.self, at: 0) }
        #expect(values == Array(0..<10_000))

        // One by one, for the ratio printed below (informative, not asserted).
        try await connection.query("TRUNCATE seq")
        let serialStart = clock.now
        try await connection.transaction { tx in
            for value in 0..<10_000 {
                try await tx.query("INSERT INTO seq (v, label) VALUES ($1, $2)", [Int32(value), "row \(value)"])
            }
        }
        let serial = clock.now - serialStart
        let ratio = serial / pipelined
        print("pipeline: 10,000 INSERTs pipelined in \(pipelined), one by one in \(serial): ratio \(String(format: "%.1f", ratio))×")
    }

    @Test("an error in the middle is reported for its statement, and nothing up to the sync commits")
    func errorInTheMiddle() async throws {
        let db = try await TestDatabase.fresh("pipelineerror")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE u (id int PRIMARY KEY)")
        var pipeline = Pipeline()
        for id in 0..<100 { pipeline.append("INSERT INTO u VALUES ($1)", [Int32(id)]) }
        pipeline.append("INSERT INTO u VALUES ($1)", [Int32(5)])  // statement 100: duplicate
        for id in 200..<300 { pipeline.append("INSERT INTO u VALUES ($1)", [Int32(id)]) }
        let error = try await #require(throws: PostgresError.self) { try await connection.execute(pipeline) }
        #expect(error.statementIndex == 100)
        #expect(error.sqlState == "23505")
        #expect(try await connection.query("SELECT count(*) FROM u")[0].decode(Int64.self, at: 0) == 0)

        // Inside an explicit transaction the error aborts it, and the connection recovers.
        await #expect(throws: PostgresError.self) {
            try await connection.transaction { tx in
                try await tx.query("INSERT INTO u VALUES (1000)")
                try await tx.execute(pipeline)
            }
        }
        #expect(try await connection.query("SELECT count(*) FROM u")[0].decode(Int64.self, at: 0) == 0)
        var good = Pipeline()
        good.append("INSERT INTO u VALUES ($1)", [Int32(1)])
        good.append("SELECT count(*) FROM u")
        let results = try await connection.execute(good)
        #expect(try results[1][0].decode(Int64.self, at: 0) == 1)
    }

    @Test("prepared statements run in a pipeline inside a transaction")
    func preparedInTransaction() async throws {
        let db = try await TestDatabase.fresh("pipelineprepared")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE counter (k text PRIMARY KEY, n bigint NOT NULL)")
        try await connection.prepare(
            "bump", "INSERT INTO counter VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = counter.n + 1")
        try await connection.transaction { tx in
            var pipeline = Pipeline()
            for index in 0..<3_000 { pipeline.appendPrepared("bump", ["k\(index % 3)"]) }
            try await tx.execute(pipeline)
        }
        let rows = try await connection.query("SELECT k, n FROM counter ORDER BY k").map {
            "\(try $0.decode(String.self, at: 0))=\(try $0.decode(Int64.self, at: 1))"
        }
        #expect(rows == ["k0=1000", "k1=1000", "k2=1000"])
    }
}
