import EventStore
import Foundation
import Postgres
import ProjectionistApp
import Projections
import TestSupport
import TestTraits
import Testing

/// A deployment switching from eventsalsa/projector: `migrate` copies the projector's
/// checkpoints (`projection_checkpoints`) into the configured projections' rows once, and the
/// daemon carries on from them.
@Suite(.database, .timeLimit(.minutes(2)))
struct EventsalsaProjectorSwitchTests {
    static let store = EventStore(EventStoreConfiguration(layout: .stream))

    /// The store's tables (stream layout) and the projector's, 12 events (3 orders of 4), and
    /// the projector's checkpoints: two projections at 8, one it does not know here, one at 0.
    func projectorDatabase(_ label: String) async throws -> (TestDatabase, PostgresConnection) {
        let db = try await TestDatabase.fresh(label)
        let connection = try await db.connect()
        var schema = Schema()
        schema.layout = .stream
        schema.headsTable = EventLayout.stream.defaultHeadsTable
        try await connection.execute(script: Migration.eventStoreSQL(schema))
        try await connection.execute(script: EventsalsaProjectorSchema.sql)
        for order in 0..<3 {
            _ = try await Self.store.appendInOwnTransaction(OrderWorkload.events(orderID: "p\(order)", lines: 2), expected: .noStream, on: connection)
        }
        try await connection.query(
            "INSERT INTO projection_checkpoints (projection_name, last_position) VALUES ('order_log', 8), ('split', 8), ('elsewhere', 5), ('fresh', 0)")
        return (db, connection)
    }

    func config(_ db: TestDatabase) -> String {
        func projection(_ name: String, partitions: Int = 1) -> String {
            let row = "INSERT INTO \(name) VALUES ($global_position)"
            return """
                  - name: \(name)
                    partitions: \(partitions)
                    setup: CREATE TABLE IF NOT EXISTS \(name) (global_position BIGINT PRIMARY KEY)
                    handlers:
                      OrderPlaced: \(row)
                      OrderLineAdded: \(row)
                      OrderConfirmed: \(row)
                """
        }
        return TemporaryFile.write(
            TestDaemonConfig(db).yaml + "\nstore:\n  layout: stream\nprojections:\n"
                + [projection("order_log"), projection("split", partitions: 2), projection("fresh")].joined(separator: "\n"))
    }

    func positions(_ table: String, on connection: PostgresConnection) async throws -> [Int64] {
        try await connection.query("SELECT global_position FROM \(table) ORDER BY 1").map { try $0.decode(Int64.self, at: 0) }
    }

    @Test("migrate copies the projector's checkpoints once (every partition of a partitioned projection), leaves its tables alone, and the daemon applies only what came after")
    func resumesFromProjectorCheckpoints() async throws {
        let (db, connection) = try await projectorDatabase("projector_switch")
        let config = self.config(db)
        defer { TemporaryFile.remove(config) }
        let migrated = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("checkpoint of order_log copied from projection_checkpoints (eventsalsa/projector): 8"), "\(migrated.stdout)")
        #expect(migrated.stdout.contains("checkpoint of split copied from projection_checkpoints (eventsalsa/projector): 8"))
        #expect(!migrated.stdout.contains("fresh"))
        let rows = try await connection.query("SELECT consumer_name, last_position FROM consumer_checkpoints ORDER BY 1")
        #expect(try rows.map { "\(try $0.decode(String.self, at: 0))=\(try $0.decode(Int64.self, at: 1))" } == ["order_log=8", "split#0/2=8", "split#1/2=8"])
        let again = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(again.status == 0 && !again.stdout.contains("copied"), "\(again.stdout)")
        #expect(try await connection.query("SELECT count(*) FROM projection_checkpoints")[0].decode(Int64.self, at: 0) == 4)

        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        try await eventually("every unit at the head", timeout: .seconds(30)) {
            try await connection.query("SELECT count(*) FROM consumer_checkpoints WHERE last_position = 12")[0].decode(Int64.self, at: 0) == 4
        }
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0, "\(daemon.stderr)")
        #expect(try await self.positions("order_log", on: connection) == [9, 10, 11, 12])
        #expect(try await self.positions("split", on: connection) == [9, 10, 11, 12])
        #expect(try await self.positions("fresh", on: connection) == Array(1...12))
    }

    @Test("a projection with a row of its own (here, or of an earlier partition layout) is never moved by the projector's checkpoint")
    func ownRowsWin() async throws {
        let (db, connection) = try await projectorDatabase("projector_own_rows")
        let config = try ProjectionistConfiguration.parse(try String(contentsOfFile: self.config(db), encoding: .utf8), file: "switch.yaml")
        try await connection.execute(script: Migration.sql(for: config.schema))
        try await connection.query("INSERT INTO consumer_checkpoints (consumer_name, last_position) VALUES ('order_log', 3), ('split#0/3', 2)")
        let notes = try await Migrator(configuration: config).migrate(on: connection)
        #expect(notes.isEmpty, "\(notes)")
        let rows = try await connection.query("SELECT consumer_name, last_position FROM consumer_checkpoints ORDER BY 1")
        #expect(try rows.map { "\(try $0.decode(String.self, at: 0))=\(try $0.decode(Int64.self, at: 1))" } == ["order_log=3", "split#0/3=2"])
    }
}
