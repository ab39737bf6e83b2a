import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct TypeRoundTripTests {
    @Test("every supported type round-trips in binary and in text results, NULLs included")
    func roundTrips() async throws {
        let db = try await TestDatabase.fresh("types")
        let connection = try await db.connect()
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let bytes: [UInt8] = [0, 1, 2, 255, 0x5c, 0x27]
        for text in [false, true] {
            let row = try await connection.query(
                """
                SELECT $1::int2, $2::int4, $3::int8, $4::bool, $5::text, $6::float8, $7::bytea, $8::uuid,
                       $9::timestamptz, $10::jsonb, $11::text, $12::int8, 12345678901234.5678::numeric, -0.0042::numeric
                """,
                [
                    Int16(-12), Int32(1_234_567), Int64.max, true, "héllo 'quoted' \"x\"", 3.25, bytes, id,
                    date, PostgresJSON(#"{"a": [1, 2]}"#), String?.none, Int64?.none,
                ], textResults: text)[0]
            #expect(try row.decode(Int16.self, at: 0) == -12)
            #expect(try row.decode(Int32.self, at: 1) == 1_234_567)
            #expect(try row.decode(Int64.self, at: 2) == Int64.max)
            #expect(try row.decode(Bool.self, at: 3) == true)
            #expect(try row.decode(String.self, at: 4) == "héllo 'quoted' \"x\"")
            #expect(try row.decode(Double.self, at: 5) == 3.25)
            #expect(try row.decode([UInt8].self, at: 6) == bytes)
            #expect(try row.decode(UUID.self, at: 7) == id)
            let decodedDate = try row.decode(Date.self, at: 8)
            #expect(abs(decodedDate.timeIntervalSince(date)) < 0.000_002)
            #expect(try row.decode(String.self, at: 9) == #"{"a": [1, 2]}"#)
            #expect(try row.decode(String?.self, at: 10) == nil)
            #expect(try row.decode(Int64?.self, at: 11) == nil)
            #expect(try row[11, as: Int64.self] == nil)
            #expect(try row.decode(String.self, at: 12) == "12345678901234.5678")
            #expect(try row.decode(String.self, at: 13) == "-0.0042")
            #expect(throws: PostgresError.self) { try row.decode(Int64.self, at: 11) }
        }
    }

    @Test("a timestamptz decoded as Date binds back as the same microsecond, from binary and text results")
    func dateMicroseconds() async throws {
        let db = try await TestDatabase.fresh("datemicros")
        let connection = try await db.connect()
        let value = """
            timestamptz '1998-07-01 00:00:00.000001+00' + i * interval '10 days 1 hour 1.000001 second'
                + (i * 7919) % 1000000 * interval '1 microsecond'
            """
        for text in [false, true] {
            var differing: [String] = []
            let rows = try await connection.query("SELECT i, \(value) FROM generate_series(1, 500) AS i", textResults: text)
            for row in rows {
                let date = try row.decode(Date.self, at: 1)
                let same = try await connection.query(
                    "SELECT $1 = \(value) FROM (SELECT $2::int AS i) AS t", [date, try row.decode(Int32.self, at: 0)])
                if try !same[0].decode(Bool.self, at: 0) { differing.append("\(date.timeIntervalSince1970)") }
            }
            #expect(differing.count == 0, "text results \(text): dates moved, e.g. \(differing.prefix(3))")
        }
    }

    @Test("a bytea of 1 MiB round-trips unchanged")
    func largeBytea() async throws {
        let db = try await TestDatabase.fresh("bytea")
        let connection = try await db.connect()
        let payload = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try await connection.query("CREATE TABLE blobs (id int PRIMARY KEY, body bytea NOT NULL)")
        try await connection.query("INSERT INTO blobs VALUES (1, $1)", [payload])
        let back = try await connection.query("SELECT body, length(body) FROM blobs WHERE id = 1")[0]
        #expect(try back.decode(Data.self, at: 0) == payload)
        #expect(try back.decode(Int64.self, at: 1) == 1 << 20)
        let asText = try await connection.query("SELECT body FROM blobs", textResults: true)[0]
        #expect(try asText.decode(Data.self, at: 0) == payload)
    }

    @Test("sum() over bigint comes back as numeric and decodes to Int64")
    func numericAggregates() async throws {
        let db = try await TestDatabase.fresh("numeric")
        let connection = try await db.connect()
        let row = try await connection.query("SELECT sum(x) FROM (VALUES (9000000000::int8), (2::int8)) AS t(x)")[0]
        #expect(try row.decode(Int64.self, at: 0) == 9_000_000_002)
    }
}
