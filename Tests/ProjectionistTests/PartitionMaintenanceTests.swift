import EventStore
import Foundation
import Postgres
import ProjectionistApp
import TestSupport
import TestTraits
import Testing

/// `migrate` on a RANGE-partitioned events table it owns keeps the range holding the head and
/// the next two; on one it does not own it creates none; ranges of another size are a
/// configuration error naming the partition.
@Suite(.database, .timeLimit(.minutes(2)))
struct PartitionMaintenanceTests {
    static let store = EventStore(EventStoreConfiguration(layout: .stream))

    func config(_ db: TestDatabase, store: String) throws -> ProjectionistConfiguration {
        try ProjectionistConfiguration.parse(
            "database:\n  url: \"\(db.connectionString)\"\nstore:\n  layout: stream\n" + store, file: "partitions.yaml")
    }

    func ranges(on connection: PostgresConnection) async throws -> [String] {
        try await connection.query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1"
        ).map { try $0.decode(String.self, at: 0) }
    }

    func append(_ count: Int, on connection: PostgresConnection) async throws {
        for _ in 0..<count {
            let event = Event(aggregateType: "Order", aggregateID: UUID().uuidString, eventType: "OrderPlaced", payload: Array("{}".utf8))
            _ = try await Self.store.appendInOwnTransaction([event], expected: .noStream, on: connection)
        }
    }

    @Test("migrate creates the initial ranges, then at every run the ranges up to two past the head's (the sequence's, if ahead), each once")
    func keepsRangesAhead() async throws {
        let db = try await TestDatabase.fresh("partitions_ahead")
        let connection = try await db.connect()
        let config = try self.config(db, store: "  partitioning: native\n  partition_size: 10\n  initial_partitions: 1\n")
        let migrator = Migrator(configuration: config)
        let first = try await migrator.migrate(on: connection)
        #expect(try await self.ranges(on: connection) == ["events_p0000000001_p0000000010", "events_p0000000011_p0000000020", "events_p0000000021_p0000000030"])
        #expect(first == ["created partition events_p0000000011_p0000000020 (positions 11–20)", "created partition events_p0000000021_p0000000030 (positions 21–30)"])
        #expect(try await migrator.migrate(on: connection).isEmpty)

        try await self.append(25, on: connection)
        let second = try await migrator.migrate(on: connection)
        #expect(second.count == 2)
        #expect(try await self.ranges(on: connection).suffix(2) == ["events_p0000000031_p0000000040", "events_p0000000041_p0000000050"])
        try await self.append(20, on: connection)  // up to 45: the ranges created are used
        #expect(try await connection.query("SELECT count(DISTINCT tableoid) FROM events")[0].decode(Int64.self, at: 0) == 5)

        // The sequence moved far ahead (a bulk import, setval): the ranges around it.
        try await connection.query("SELECT setval('events_global_position_seq', 95)")
        #expect(try await migrator.migrate(on: connection).count == 3)
        #expect(try await self.ranges(on: connection).suffix(3) == ["events_p0000000091_p0000000100", "events_p0000000101_p0000000110", "events_p0000000111_p0000000120"])
        try await self.append(1, on: connection)
        #expect(try await connection.query("SELECT max(global_position) FROM events")[0].decode(Int64.self, at: 0) == 96)
    }

    @Test("ranges made with another size: migrate exits 78 naming store.partition_size and the partition, creating nothing")
    func sizeMismatch() async throws {
        let db = try await TestDatabase.fresh("partitions_mismatch")
        let connection = try await db.connect()
        try await Migrator(configuration: try self.config(db, store: "  partitioning: native\n  partition_size: 10\n")).migrate(on: connection)
        let before = try await self.ranges(on: connection)
        let file = TemporaryFile.write(
            "database:\n  url: \"\(db.connectionString)\"\nstore:\n  layout: stream\n  partitioning: native\n  partition_size: 1000\n")
        defer { TemporaryFile.remove(file) }
        let migrated = try await ProjectionistProcess.run(["migrate", "--config", file])
        #expect(migrated.status == 78)
        #expect(migrated.stderr.contains("store.partition_size"), "\(migrated.stderr)")
        #expect(migrated.stderr.contains("events_p0000000001_p0000000010"), "\(migrated.stderr)")
        #expect(try await self.ranges(on: connection) == before)
    }

    @Test("manage_schema: false leaves the ranges to their owner; partitioning: native on a plain table exits 78 naming the key")
    func notOwned() async throws {
        let db = try await TestDatabase.fresh("partitions_not_owned")
        let connection = try await db.connect()
        var schema = Schema()
        schema.layout = .stream
        schema.headsTable = EventLayout.stream.defaultHeadsTable
        schema.partitioning = .native(size: 10, initial: 1)
        try await connection.execute(script: Migration.sql(for: schema))
        try await self.append(5, on: connection)
        let config = try self.config(db, store: "  manage_schema: false\n  partitioning: native\n  partition_size: 10\n")
        #expect(try await Migrator(configuration: config).migrate(on: connection).isEmpty)
        #expect(try await self.ranges(on: connection) == ["events_p0000000001_p0000000010"])

        let plain = try await TestDatabase.fresh("partitions_plain")
        let plainConnection = try await plain.connect()
        try await Migrator(configuration: try self.config(plain, store: "")).migrate(on: plainConnection)
        let error = await #expect(throws: ConfigurationError.self) {
            try await Migrator(configuration: try self.config(plain, store: "  partitioning: native\n")).migrate(on: plainConnection)
        }
        #expect(error?.keyPath == "store.partitioning")
    }
}
