import EventStore
import Foundation
import Postgres
import ProjectionistApp
import Projections
import TestSupport
import TestTraits
import Testing

/// The daemon on eventsalsa/store's current layout: `stream_*` columns and a RANGE-partitioned
/// events table (ranges of 10 positions here), written through the Swift `EventStore` in that
/// layout and by writers inserting straight into a range.
@Suite(.database, .timeLimit(.minutes(3)))
struct StreamLayoutDaemonTests {
    static let store = EventStore(EventStoreConfiguration(layout: .stream))

    func config(_ db: TestDatabase) -> String {
        let row = "INSERT INTO stream_log VALUES ($global_position, $stream_type, $stream_id, $stream_version, $aggregate_type, $aggregate_id, $aggregate_version)"
        return TemporaryFile.write(
            TestDaemonConfig(db).yaml + "\n" + """
                store:
                  layout: stream
                  partitioning: native
                  partition_size: 10
                  initial_partitions: 4
                projections:
                  - name: stream_log
                    stream_types: [Order]
                    setup: |
                      CREATE TABLE IF NOT EXISTS stream_log (global_position BIGINT PRIMARY KEY, stream_type TEXT, stream_id TEXT,
                          stream_version BIGINT, aggregate_type TEXT, aggregate_id TEXT, aggregate_version BIGINT);
                      CREATE TABLE IF NOT EXISTS stream_partitioned (global_position BIGINT PRIMARY KEY)
                    handlers:
                      OrderPlaced: \(row)
                      OrderLineAdded: \(row)
                      OrderConfirmed: \(row)
                  - name: stream_partitioned
                    partitions: 2
                    handlers:
                      OrderPlaced: INSERT INTO stream_partitioned VALUES ($global_position)
                      OrderLineAdded: INSERT INTO stream_partitioned VALUES ($global_position)
                      OrderConfirmed: INSERT INTO stream_partitioned VALUES ($global_position)
                      Refunded: INSERT INTO stream_partitioned VALUES ($global_position)
                """)
    }

    @discardableResult
    func appendOrder(_ id: String, lines: Int, on connection: PostgresConnection) async throws -> [Int64] {
        try await Self.store.appendInOwnTransaction(OrderWorkload.events(orderID: id, lines: lines), expected: .noStream, on: connection)
    }

    func checkpoint(_ name: String, on connection: PostgresConnection) async throws -> Int64 {
        try await CheckpointStore().position(name, on: connection) ?? -1
    }

    @Test("catch-up and live appends across four ranges, a held append waited for then rolled back (audited aborted), another committed: every event once, $stream_* equal to $aggregate_*")
    func partitionedStreamLayout() async throws {
        let db = try await TestDatabase.fresh("stream_layout")
        let config = self.config(db)
        defer { TemporaryFile.remove(config) }
        let migrated = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        let connection = try await db.connect()
        let shape = try await connection.query(
            "SELECT c.relkind::text, (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid) FROM pg_class c WHERE c.oid = 'events'::regclass")
        #expect(try shape[0].decode(String.self, at: 0) == "p")
        #expect(try shape[0].decode(Int64.self, at: 1) == 4)

        // Before the daemon starts: 3 orders and a refund (out of the first projection's scope).
        for order in 0..<3 { try await self.appendOrder("before-\(order)", lines: 1, on: connection) }
        try await Self.store.appendInOwnTransaction(
            [Event(aggregateType: "Refund", aggregateID: "r1", eventType: "Refunded", payload: Array(#"{"cents": 5}"#.utf8))],
            expected: .noStream, on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        try await eventually("caught up", timeout: .seconds(30)) { try await self.checkpoint("stream_log", on: connection) == 10 }
        for order in 0..<5 { try await self.appendOrder("live-\(order)", lines: 1, on: connection) }
        try await eventually("live appends applied", timeout: .seconds(30)) { try await self.checkpoint("stream_log", on: connection) == 25 }

        // A writer inserting straight into the range the next position falls in holds that
        // position open: the daemon waits for it, then passes it over once it rolls back.
        let held = try await db.connect()
        let next = try await connection.query("SELECT last_value + 1 FROM events_global_position_seq")[0].decode(Int64.self, at: 0)
        let range = EventPartitioning.Range.holding(next, size: 10).partitionName(of: "events")
        try await held.query("BEGIN")
        let heldPosition = try await held.query(
            "INSERT INTO \(range) (stream_type, stream_id, stream_version, event_id, event_type, payload) VALUES ('Order', 'held', 1, gen_random_uuid(), 'OrderPlaced', '\\x7b7d') RETURNING global_position"
        )[0].decode(Int64.self, at: 0)
        let after = try await self.appendOrder("after-rollback", lines: 0, on: connection)
        try await eventually("the daemon waits on the held position", timeout: .seconds(30)) {
            let json = try await statusJSON(config)
            return projectionState(json, "stream_log")["state"] as? String == "waiting_on_gap"
        }
        #expect(try await self.checkpoint("stream_log", on: connection) == heldPosition - 1)
        try await held.query("ROLLBACK")
        try await eventually("passed over once rolled back", timeout: .seconds(30)) {
            try await self.checkpoint("stream_log", on: connection) == after.last!
        }
        let audit = try await connection.query(
            "SELECT reason FROM consumer_gap_skips WHERE consumer_name = 'stream_log' AND gap_position = $1", [heldPosition])
        #expect(try audit.map { try $0.decode(String.self, at: 0) } == ["aborted"])

        // Another held append, through the parent table, that commits: applied.
        try await held.query("BEGIN")
        let committed = try await held.query(
            "INSERT INTO events (stream_type, stream_id, stream_version, event_id, event_type, payload) VALUES ('Order', 'held-2', 1, gen_random_uuid(), 'OrderPlaced', '\\x7b7d') RETURNING global_position"
        )[0].decode(Int64.self, at: 0)
        let later = try await self.appendOrder("after-commit", lines: 0, on: connection)
        try await eventually("the daemon waits on the second held position", timeout: .seconds(30)) {
            projectionState(try await statusJSON(config), "stream_log")["state"] as? String == "waiting_on_gap"
        }
        try await held.query("COMMIT")
        let last = try await self.appendOrder("last", lines: 2, on: connection).last!
        #expect(last > 30, "the log reaches the fourth range")
        try await eventually("every event applied", timeout: .seconds(30)) {
            let log = try await self.checkpoint("stream_log", on: connection)
            let units = try await connection.query("SELECT min(last_position) FROM consumer_checkpoints WHERE consumer_name LIKE 'stream_partitioned#%'")
            let slowest = try units[0].decode(Int64?.self, at: 0)
            return log == last && slowest == last
        }
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)

        // Every committed Order event once, with the layout's columns under both names.
        let events = try await connection.query(
            "SELECT global_position, stream_type, stream_id, stream_version FROM events WHERE stream_type = 'Order' ORDER BY 1")
        let logged = try await connection.query("SELECT * FROM stream_log ORDER BY 1")
        #expect(logged.count == events.count)
        #expect(try logged.map { try $0.decode(Int64.self, at: 0) } == events.map { try $0.decode(Int64.self, at: 0) })
        #expect(try logged.map { try $0.decode(Int64.self, at: 0) }.contains(committed))
        for (row, event) in zip(logged, events) {
            #expect(try row.decode(String.self, at: 1) == event.decode(String.self, at: 1))
            #expect(try row.decode(String.self, at: 2) == event.decode(String.self, at: 2))
            #expect(try row.decode(Int64.self, at: 3) == event.decode(Int64.self, at: 3))
            #expect(try row.decode(String.self, at: 4) == row.decode(String.self, at: 1))
            #expect(try row.decode(String.self, at: 5) == row.decode(String.self, at: 2))
            #expect(try row.decode(Int64.self, at: 6) == row.decode(Int64.self, at: 3))
        }
        // The partitioned projection (no scope, two units by stream hash): every event once.
        let all = try await connection.query("SELECT count(*) FROM events")[0].decode(Int64.self, at: 0)
        #expect(try await connection.query("SELECT count(*) FROM stream_partitioned")[0].decode(Int64.self, at: 0) == all)
        let ranges = try await connection.query("SELECT count(DISTINCT tableoid) FROM events")[0].decode(Int64.self, at: 0)
        #expect(ranges == 4)
        _ = later
    }

    @Test("store.layout and its heads table: the other layout's heads key, an unknown layout, stream_types beside aggregate_types, partition settings without native are errors naming the key")
    func configuration() throws {
        func error(_ yaml: String) -> String {
            do {
                _ = try ProjectionistConfiguration.parse(yaml, file: "layout.yaml")
                return "parsed"
            } catch {
                return "\(error)"
            }
        }
        let stream = try ProjectionistConfiguration.parse("store:\n  layout: stream\n", file: "layout.yaml")
        #expect(stream.schema.layout == .stream)
        #expect(stream.schema.headsTable == QualifiedName(name: "stream_heads"))
        let named = try ProjectionistConfiguration.parse("store:\n  stream_heads_table: es.heads\n  layout: stream\n", file: "layout.yaml")
        #expect(named.schema.headsTable == QualifiedName(schema: "es", name: "heads"))
        #expect(error("store:\n  layout: stream\n  aggregate_heads_table: h\n").contains("store.aggregate_heads_table"))
        #expect(error("store:\n  stream_heads_table: h\n").contains("store.stream_heads_table"))
        #expect(error("store:\n  layout: streams\n").contains("store.layout"))
        #expect(error("store:\n  partition_size: 10\n").contains("store.partition_size"))
        #expect(error("store:\n  partitioning: hash\n").contains("store.partitioning"))
        let native = try ProjectionistConfiguration.parse("store:\n  partitioning: native\n  initial_partitions: 2\n", file: "layout.yaml")
        #expect(native.schema.partitioning == .native(size: 10_000_000, initial: 2))
        let both = "projections:\n  - name: p\n    aggregate_types: [A]\n    stream_types: [A]\n    handlers:\n      X: SELECT 1\n"
        #expect(error(both).contains("stream_types"))
        let alias = try ProjectionistConfiguration.parse(
            "projections:\n  - name: p\n    stream_types: [Order]\n    handlers:\n      X: SELECT $stream_id\n", file: "layout.yaml")
        #expect(alias.projections.first?.aggregateTypes == ["Order"])
    }

    @Test("the range holding a position and its eventsalsa/store name")
    func ranges() {
        let first = EventPartitioning.Range.holding(1, size: 10_000_000)
        #expect(first.partitionName(of: "events") == "events_p0000000001_p0010000000")
        #expect(first.first == 1 && first.last == 10_000_000)
        #expect(EventPartitioning.Range.holding(10_000_000, size: 10_000_000).index == 0)
        #expect(EventPartitioning.Range.holding(10_000_001, size: 10_000_000).partitionName(of: "events") == "events_p0010000001_p0020000000")
        #expect(EventPartitioning.Range.holding(11, size: 5).partitionName(of: "ev") == "ev_p0000000011_p0000000015")
        #expect(EventPartitioning.Range.holding(0, size: 5).index == 0)
    }
}
