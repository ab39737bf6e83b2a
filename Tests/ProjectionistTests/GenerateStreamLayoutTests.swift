import EventStore
import Foundation
import Postgres
import ProjectionistApp
import Projections
import TestSupport
import TestTraits
import Testing

/// `migrations generate --layout stream --partitioning native`: the file eventsalsa/store's
/// generator would write for that layout (plus Projectionist's tables), applied with psql, and
/// the daemon running on it with `migrate` never run.
@Suite(.database, .timeLimit(.minutes(2)))
struct GenerateStreamLayoutTests {
    @Test("the file makes a partitioned events table (relkind p) with stream columns, stream_heads, 4 ranges and a sequence it does not own; the daemon runs on it")
    func generatedPartitionedStreamSchema() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID())").path
        defer { TemporaryFile.remove(directory) }
        let generated = try await ProjectionistProcess.run([
            "migrations", "generate", "--output", directory, "--filename", "stream.sql", "--layout", "stream",
            "--partitioning", "native", "--partition-size", "10", "--initial-partitions", "4",
        ])
        #expect(generated.status == 0, "\(generated.stderr)")
        let db = try await TestDatabase.fresh("generate_stream")
        for _ in 0..<2 {
            let applied = try await Shell.run([
                "psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-q", "-d", db.connectionString, "-f", "\(directory)/stream.sql",
            ])
            #expect(applied.status == 0, "psql: \(applied.output)")
        }
        let connection = try await db.connect()
        #expect(try await connection.query("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass")[0].decode(String.self, at: 0) == "p")
        let columns = try await connection.query(
            "SELECT string_agg(attname::text, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'events'::regclass AND attnum > 0 AND NOT attisdropped")
        let names = try columns[0].decode(String.self, at: 0)
        #expect(names.hasPrefix("global_position,stream_type,stream_id,stream_version,event_id,"), "\(names)")
        let ranges = try await connection.query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1")
        #expect(try ranges.map { try $0.decode(String.self, at: 0) } == [
            "events_p0000000001_p0000000010", "events_p0000000011_p0000000020", "events_p0000000021_p0000000030", "events_p0000000031_p0000000040",
        ])
        #expect(try await connection.query("SELECT pg_get_serial_sequence('events', 'global_position') IS NULL")[0].decode(Bool.self, at: 0))
        #expect(try await connection.query("SELECT to_regclass('stream_heads') IS NOT NULL AND to_regclass('aggregate_heads') IS NULL")[0].decode(Bool.self, at: 0))
        for index in ["idx_events_stream", "idx_events_stream_type_position", "idx_events_event_type", "idx_events_correlation", "idx_stream_heads_updated"] {
            #expect(try await connection.query("SELECT to_regclass($1) IS NOT NULL", [index])[0].decode(Bool.self, at: 0), "\(index)")
        }

        // The daemon on that schema (manage_schema: false: nothing but the file made it).
        try await connection.query("CREATE TABLE gen_log (global_position BIGINT PRIMARY KEY, stream_id TEXT NOT NULL)")
        let row = "INSERT INTO gen_log VALUES ($global_position, $stream_id)"
        let config = TemporaryFile.write(
            TestDaemonConfig(db).yaml + """

                store:
                  layout: stream
                  manage_schema: false
                projections:
                  - name: gen_log
                    stream_types: [Order]
                    handlers:
                      OrderPlaced: \(row)
                      OrderLineAdded: \(row)
                      OrderConfirmed: \(row)
                """)
        defer { TemporaryFile.remove(config) }
        let store = EventStore(EventStoreConfiguration(layout: .stream))
        var last: Int64 = 0
        for order in 0..<4 {
            last = try await store.appendInOwnTransaction(OrderWorkload.events(orderID: "g\(order)", lines: 2), expected: .noStream, on: connection).last!
        }
        #expect(last > 10, "the log spans more than one range")
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        try await eventually("caught up across the ranges", timeout: .seconds(30)) {
            try await CheckpointStore().position("gen_log", on: connection) == last
        }
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0, "\(daemon.stderr)")
        let logged = try await connection.query("SELECT array_agg(global_position ORDER BY 1)::text FROM gen_log")[0].decode(String.self, at: 0)
        let events = try await connection.query("SELECT array_agg(global_position ORDER BY 1)::text FROM events")[0].decode(String.self, at: 0)
        #expect(logged == events)
    }

    @Test("the flags: a heads table of the other layout, partition flags without native, bad values: 64 naming the flag")
    func flags() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID())").path
        defer { TemporaryFile.remove(directory) }
        let cases: [([String], String)] = [
            (["--layout", "stream", "--aggregate-heads-table", "heads"], "--stream-heads-table"),
            (["--stream-heads-table", "heads"], "--aggregate-heads-table"),
            (["--partition-size", "10"], "--partitioning native"),
            (["--layout", "streams"], "--layout"),
            (["--partitioning", "partman"], "--partitioning"),
            (["--partitioning", "native", "--initial-partitions", "0"], "--initial-partitions"),
            (["--partitioning", "native", "--partition-size", "0"], "--partition-size"),
        ]
        for (arguments, named) in cases {
            let run = try await ProjectionistProcess.run(["migrations", "generate", "--output", directory] + arguments)
            #expect(run.status == 64, "\(arguments)")
            #expect(run.stderr.contains(named), "\(arguments): \(run.stderr)")
        }
        let named = try await ProjectionistProcess.run([
            "migrations", "generate", "--output", directory, "--filename", "s.sql", "--layout", "stream", "--stream-heads-table", "app.heads",
        ])
        #expect(named.status == 0, "\(named.stderr)")
        let sql = try String(contentsOfFile: "\(directory)/s.sql", encoding: .utf8)
        #expect(sql.contains(#"CREATE TABLE IF NOT EXISTS "app"."heads""#) && sql.contains("stream_version BIGINT NOT NULL"))
        #expect(sql.contains("UNIQUE (stream_type, stream_id, stream_version)"))
    }
}
