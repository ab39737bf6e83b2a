import EventStore
import Foundation
import Postgres
@testable import Projections
import TestSupport
import TestTraits
import Testing

@Suite struct SQLParameterScannerTests {
    let known = Set(SQLProjection.parameterTypes.keys)

    @Test("named parameters become positional, each name once, in order of first use")
    func rewrites() throws {
        let result = try SQLParameterScanner.rewrite(
            "UPDATE t SET v = $aggregate_version, x = $payload->>'x' WHERE id = $aggregate_id AND v < $aggregate_version;", known: known)
        #expect(result.sql == "UPDATE t SET v = $1, x = $2->>'x' WHERE id = $3 AND v < $1")
        #expect(result.names == ["aggregate_version", "payload", "aggregate_id"])
    }

    @Test("literals, identifiers, comments, dollar quotes and casts are not scanned", arguments: [
        ("SELECT '$aggregate_id', $event_id", "SELECT '$aggregate_id', $1", ["event_id"]),
        ("SELECT 'it''s $payload', $event_id", "SELECT 'it''s $payload', $1", ["event_id"]),
        (#"SELECT E'\'$payload', $event_id"#, #"SELECT E'\'$payload', $1"#, ["event_id"]),
        (#"SELECT "$weird""", $event_id"#, #"SELECT "$weird""", $1"#, ["event_id"]),
        ("SELECT $body$ $aggregate_id ; $body$, $event_id", "SELECT $body$ $aggregate_id ; $body$, $1", ["event_id"]),
        ("SELECT $$ $payload $$ || $event_type", "SELECT $$ $payload $$ || $1", ["event_type"]),
        ("SELECT $payload::jsonb -> 'a', $created_at::date", "SELECT $1::jsonb -> 'a', $2::date", ["payload", "created_at"]),
        ("SELECT 1 -- $payload\n, $event_id", "SELECT 1 -- $payload\n, $1", ["event_id"]),
        ("SELECT /* $payload /* nested $x */ */ $event_id", "SELECT /* $payload /* nested $x */ */ $1", ["event_id"]),
        ("SELECT a$b FROM t WHERE x = $projection", "SELECT a$b FROM t WHERE x = $1", ["projection"]),
        ("SELECT 1; -- trailing comment", "SELECT 1 -- trailing comment", []),
    ])
    func skips(sql: String, expected: String, names: [String]) throws {
        let result = try SQLParameterScanner.rewrite(sql, known: known)
        #expect(result.sql == expected)
        #expect(result.names == names)
    }

    @Test("refused: unknown names, positional parameters, several statements, unterminated text", arguments: [
        ("SELECT $aggregateid", "unknown parameter $aggregateid"),
        ("SELECT $1", "positional parameters"),
        ("SELECT 1; SELECT 2", "more than one statement"),
        ("SELECT 'open", "unterminated string"),
        ("SELECT $x$ open", "unterminated dollar-quoted"),
        ("SELECT /* open", "unterminated /*"),
        ("  ", "empty"),
    ])
    func refuses(sql: String, message: String) {
        let error = #expect(throws: SQLParameterScanner.ScanError.self) { try SQLParameterScanner.rewrite(sql, known: known) }
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }
}

@Suite(.database, .timeLimit(.minutes(1)))
struct SQLProjectionTests {
    @Test("a SQL projection binds every named parameter with its type")
    func everyParameter() async throws {
        let db = try await projectionDatabase("sqlparams")
        let connection = try await db.connect()
        try await connection.query(
            """
            CREATE TABLE seen (global_position bigint, aggregate_type text, aggregate_id text, aggregate_version bigint,
              event_id uuid, event_type text, event_version int, payload jsonb, payload_bytes bytea, metadata jsonb,
              created_at timestamptz, trace_id text, correlation_id text, causation_id text, projection text, note text)
            """)
        let projection = try SQLProjection(
            name: "all_params", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [(
                "Everything",
                [
                    """
                    INSERT INTO seen VALUES ($global_position, $aggregate_type, $aggregate_id, $aggregate_version, $event_id,
                      $event_type, $event_version, $payload, $payload_bytes, $metadata, $created_at, $trace_id, $correlation_id,
                      $causation_id, $projection, 'literal $payload stays')
                    """,
                    "UPDATE seen SET note = note || ' / ' || ($payload->>'n')::text WHERE event_id = $event_id",
                ]
            )])
        let created = Date(timeIntervalSince1970: 1_760_000_000.25)
        let event = Event(
            aggregateType: "Thing", aggregateID: "t-1", eventType: "Everything", eventVersion: 7,
            payload: Array(#"{"n": 42}"#.utf8), metadata: Array(#"{"m": true}"#.utf8), traceID: "tr", correlationID: "co",
            causationID: "ca", createdAt: created)
        let appended = try await connection.transaction { tx in try await EventStore().append([event], expected: .noStream, in: tx) }
        let running = try RunningWorker(db, [projection])
        try await eventually("applied") { try await checkpoint("all_params", on: connection) == appended.globalPositions[0] }
        await running.stop()
        let row = try await connection.query(
            """
            SELECT global_position, aggregate_type, aggregate_id, aggregate_version, event_id, event_type, event_version,
                   payload::text, payload_bytes, metadata::text, created_at, trace_id, correlation_id, causation_id, projection, note
            FROM seen
            """)[0]
        #expect(try row.decode(Int64.self, at: 0) == appended.globalPositions[0])
        #expect(try row.decode(String.self, at: 1) == "Thing")
        #expect(try row.decode(String.self, at: 2) == "t-1")
        #expect(try row.decode(Int64.self, at: 3) == 1)
        #expect(try row.decode(UUID.self, at: 4) == event.eventID)
        #expect(try row.decode(String.self, at: 5) == "Everything")
        #expect(try row.decode(Int32.self, at: 6) == 7)
        #expect(try row.decode(String.self, at: 7) == #"{"n": 42}"#)
        #expect(try row.decode([UInt8].self, at: 8) == Array(#"{"n": 42}"#.utf8))
        #expect(try row.decode(String.self, at: 9) == #"{"m": true}"#)
        #expect(try row.decode(Date.self, at: 10) == created)
        #expect(try row.decode(String.self, at: 11) == "tr")
        #expect(try row.decode(String.self, at: 12) == "co")
        #expect(try row.decode(String.self, at: 13) == "ca")
        #expect(try row.decode(String.self, at: 14) == "all_params")
        #expect(try row.decode(String.self, at: 15) == "literal $payload stays / 42")
    }

    @Test("$created_at reaches the read model exactly as stored, to the microsecond")
    func exactCreatedAt() async throws {
        let db = try await projectionDatabase("sqlcreatedat")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE ticks (event_id uuid PRIMARY KEY, created_at timestamptz NOT NULL)")
        try await Seeder.seedTicks(1_000, on: connection)
        for index in 0..<50 {  // stamped by the database's now()
            try await connection.transaction { tx in
                let event = Event(aggregateType: "Clock", aggregateID: "now\(index)", eventType: "Ticked", payload: Array("{}".utf8))
                try await EventStore().append([event], expected: .noStream, in: tx)
            }
        }
        let last = try await head(on: connection)
        let projection = try SQLProjection(
            name: "ticks", aggregateTypes: ["Clock"], onError: .stop, setup: nil, reset: nil,
            handlers: [("Ticked", ["INSERT INTO ticks VALUES ($event_id, $created_at)"])])
        let running = try RunningWorker(db, [projection])
        try await eventually("reaches the head") { try await checkpoint("ticks", on: connection) == last }
        await running.stop()
        let counts = try await connection.query(
            """
            SELECT count(*), count(*) FILTER (WHERE e.created_at <> r.created_at),
                   min(e.created_at - r.created_at)::text, max(e.created_at - r.created_at)::text
            FROM events e JOIN ticks r USING (event_id)
            """)[0]
        let range = "\(try counts.decode(String.self, at: 2)) to \(try counts.decode(String.self, at: 3))"
        #expect(try counts.decode(Int64.self, at: 0) == 1_050)
        #expect(try counts.decode(Int64.self, at: 1) == 0, "created_at differences range from \(range)")
    }

    @Test("a payload that is not JSON fails only handlers that use $payload")
    func nonJSONPayload() async throws {
        let db = try await projectionDatabase("sqlnonjson")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE hits (projection text, position bigint)")
        func projection(_ name: String, _ sql: String) throws -> SQLProjection {
            try SQLProjection(name: name, aggregateTypes: nil, onError: .skip, setup: nil, reset: nil, handlers: [("Secret", [sql])])
        }
        let blind = try projection("blind", "INSERT INTO hits VALUES ($projection, $global_position)")
        let reader = try projection("reader", "INSERT INTO hits SELECT $projection, $global_position WHERE $payload IS NOT NULL")
        let encrypted = Event(aggregateType: "Vault", aggregateID: "v", eventType: "Secret", payload: [0x8f, 0x00, 0xff, 0x13])
        let appended = try await connection.transaction { tx in try await EventStore().append([encrypted], expected: .noStream, in: tx) }
        let running = try RunningWorker(db, [blind, reader])
        try await eventually("both passed the event") {
            let blindAt = try await checkpoint("blind", on: connection)
            let readerAt = try await checkpoint("reader", on: connection)
            return blindAt == appended.globalPositions[0] && readerAt == appended.globalPositions[0]
        }
        await running.stop()
        let hits = try await connection.query("SELECT projection FROM hits").map { try $0.decode(String.self, at: 0) }
        #expect(hits == ["blind"])
        let letters = try await connection.query("SELECT consumer_name FROM consumer_dead_letters").map { try $0.decode(String.self, at: 0) }
        #expect(letters == ["reader"])
    }

    @Test("an event type without a handler is passed over and the checkpoint still moves")
    func unhandledTypes() async throws {
        let db = try await projectionDatabase("sqlunhandled")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE confirmations (order_id text)")
        let projection = try SQLProjection(
            name: "confirmations", aggregateTypes: ["Order"], onError: .stop, setup: nil, reset: nil,
            handlers: [("OrderConfirmed", ["INSERT INTO confirmations VALUES ($aggregate_id)"])])
        for index in 0..<5 { try await appendOrder("o\(index)", on: connection) }
        let last = try await head(on: connection)
        let running = try RunningWorker(db, [projection])
        try await eventually("reaches the head") { try await checkpoint("confirmations", on: connection) == last }
        await running.stop()
        #expect(try await connection.query("SELECT count(*) FROM confirmations")[0].decode(Int64.self, at: 0) == 5)
    }
}
