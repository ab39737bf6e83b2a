import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct PostgresTimestampTests {
    /// `i`-th value: every kind of microsecond digit from 1998 to 2026, then the edges of the range.
    static let values = """
        SELECT i, CASE i
            WHEN 0 THEN timestamptz '2000-01-01 00:00:00+00'
            WHEN -1 THEN timestamptz '1999-12-31 23:59:59.999999+00'
            WHEN -2 THEN timestamptz '4713-01-01 00:00:00+00 BC'
            WHEN -3 THEN timestamptz '294276-12-31 23:59:59.999999+00'
            WHEN -4 THEN timestamptz 'infinity'
            WHEN -5 THEN timestamptz '-infinity'
            WHEN -6 THEN timestamptz '1800-06-01 12:00:00.5+00'
            ELSE timestamptz '1998-07-01 00:00:00.000001+00' + i * interval '10 days 1 hour 1.000001 second'
                + (i * 7919) % 1000000 * interval '1 microsecond'
            END AS v
        FROM generate_series(-6, 300) AS i
        """

    @Test("the stored microseconds, not a Double's: 2026-01-02 03:04:05.123457+00 is 820638245123457")
    func wireValue() async throws {
        let db = try await TestDatabase.fresh("tsvalue")
        let connection = try await db.connect()
        let row = try await connection.query(
            "SELECT timestamptz '2026-01-02 03:04:05.123457+00', timestamp '2026-01-02 03:04:05.123457', $1::timestamptz::text",
            [PostgresTimestamp(microsecondsSince2000: 820_638_245_123_457)])[0]
        #expect(try row.decode(PostgresTimestamp.self, at: 0).microsecondsSince2000 == 820_638_245_123_457)
        #expect(try row.decode(PostgresTimestamp.self, at: 1).microsecondsSince2000 == 820_638_245_123_457)
        #expect(try row.decode(String.self, at: 2).hasPrefix("2026-01-0"))
        #expect(PostgresTimestamp(microsecondsSince2000: 820_638_245_123_457).description == "2026-01-02 03:04:05.123457+00")
    }

    @Test(
        "read and bound back it is the same value, from binary and text results, in any session time zone",
        arguments: [(false, "UTC"), (true, "UTC"), (true, "Asia/Kolkata"), (true, "America/St_Johns"), (true, "Europe/Amsterdam")])
    func roundTrips(textResults: Bool, timeZone: String) async throws {
        let db = try await TestDatabase.fresh("tsroundtrip")
        let connection = try await db.connect()
        try await connection.query("SELECT set_config('TimeZone', $1, false)", [timeZone])
        var checked = 0
        for row in try await connection.query(Self.values, textResults: textResults) {
            let index = try row.decode(Int32.self, at: 0)
            let value = try row.decode(PostgresTimestamp.self, at: 1)
            let same = try await connection.query(
                "SELECT $1 = v FROM (\(Self.values)) AS t WHERE i = $2", [value, index])[0]
            #expect(try same.decode(Bool.self, at: 0), "value \(index) came back as \(value)")
            checked += 1
        }
        #expect(checked == 307)
    }

    @Test("description is PostgreSQL's own text with TimeZone UTC, BC and infinity included")
    func description() async throws {
        let db = try await TestDatabase.fresh("tstext")
        let connection = try await db.connect()
        try await connection.query("SET TimeZone = 'UTC'")
        for row in try await connection.query("SELECT v, v::text FROM (\(Self.values)) AS t") {
            #expect(try row.decode(PostgresTimestamp.self, at: 0).description == row.decode(String.self, at: 1))
        }
    }

    @Test("a Date converts to the nearest microsecond, and back to the same one")
    func dates() async throws {
        let db = try await TestDatabase.fresh("tsdates")
        let connection = try await db.connect()
        let date = Date(timeIntervalSince1970: 1_767_323_045.123457)
        let stored = try await connection.query("SELECT $1::timestamptz = timestamptz '2026-01-02 03:04:05.123457+00'", [date])
        #expect(try stored[0].decode(Bool.self, at: 0))
        #expect(PostgresTimestamp(date) == PostgresTimestamp(microsecondsSince2000: 820_638_245_123_457))
        for row in try await connection.query("SELECT v FROM (\(Self.values)) AS t WHERE i > 0") {
            let value = try row.decode(PostgresTimestamp.self, at: 0)
            #expect(PostgresTimestamp(value.date) == value)
            #expect(try row.decode(Date.self, at: 0) == value.date)
        }
        #expect(PostgresTimestamp.infinity.date == .distantFuture)
        #expect(PostgresTimestamp(.distantFuture) > PostgresTimestamp.now)
        #expect(PostgresTimestamp(Date(timeIntervalSince1970: .infinity)) == .infinity)
    }

    @Test("a NULL decodes only into an Optional; another type is refused by name")
    func refusals() async throws {
        let db = try await TestDatabase.fresh("tsrefuse")
        let connection = try await db.connect()
        let row = try await connection.query("SELECT NULL::timestamptz, 42::int8")[0]
        #expect(try row.decode(PostgresTimestamp?.self, at: 0) == nil)
        let null = try #require(throws: PostgresError.self) { try row.decode(PostgresTimestamp.self, at: 0) }
        #expect(null.message.contains("PostgresTimestamp"))
        let integer = try #require(throws: PostgresError.self) { try row.decode(PostgresTimestamp.self, at: 1) }
        #expect(integer.message.contains("not a timestamp"))
    }
}
