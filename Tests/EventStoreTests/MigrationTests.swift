import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

/// Runs psql against a database, as an operator applying the generated file would.
func psql(_ connectionString: String, file: String) async throws -> (status: Int32, output: String) {
    try await Shell.run(["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-q", "-d", connectionString, "-f", file])
}

/// The repository's root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite(.database, .timeLimit(.minutes(1)))
struct MigrationTests {
    @Test("the generated SQL applies with psql to an empty database, twice", arguments: [false, true])
    func appliesTwice(qualified: Bool) async throws {
        var schema = Schema()
        schema.notifyTrigger = true
        if qualified {
            schema.eventsTable = try QualifiedName(parsing: "store.events")
            schema.headsTable = try QualifiedName(parsing: "store.aggregate_heads")
            schema.checkpointsTable = try QualifiedName(parsing: "worker.checkpoints")
            schema.gapSkipsTable = try QualifiedName(parsing: "worker.gap_skips")
            schema.deadLettersTable = try QualifiedName(parsing: "worker.dead_letters")
        }
        let db = try await TestDatabase.fresh("migration")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("migration-\(UUID()).sql").path
        try Migration.sql(for: schema).write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        for _ in 0..<2 {
            let run = try await psql(db.connectionString, file: file)
            #expect(run.status == 0, "psql failed: \(run.output)")
        }
        let connection = try await db.connect()
        let tables = try await connection.query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = ANY($1::text[])", [qualified ? "{store,worker}" : "{public}"])
        #expect(try tables[0].decode(Int64.self, at: 0) == 7)
        let trigger = try await connection.query("SELECT count(*) FROM pg_trigger WHERE tgname = 'events_notify'")
        #expect(try trigger[0].decode(Int64.self, at: 0) == 1)
        let sequence = try await connection.query(
            "SELECT cache_size FROM pg_sequences WHERE sequencename = 'events_global_position_seq'")
        #expect(try sequence[0].decode(Int64.self, at: 0) == 1)
    }

    @Test("migrations/001_projectionist.sql is what the generator writes for the defaults")
    func committedFileMatchesGenerator() throws {
        let path = repositoryRoot.appendingPathComponent("migrations/001_projectionist.sql").path
        let committed = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            committed == Migration.sql(for: Schema()),
            "migrations/ drifted from the generator: run `projectionist migrations generate --output migrations --filename 001_projectionist.sql`")
    }

    @Test("the default migration has no notify trigger; the option adds it")
    func triggerIsOptIn() {
        #expect(!Migration.sql(for: Schema()).contains("TRIGGER"))
        var schema = Schema()
        schema.notifyTrigger = true
        #expect(Migration.sql(for: schema).contains("CREATE OR REPLACE TRIGGER \"events_notify\""))
    }

    @Test("without the trigger and the event store tables, only the worker tables are created")
    func optionalParts() async throws {
        var schema = Schema()
        schema.manageEventStore = false
        schema.notifyTrigger = false
        let sql = Migration.sql(for: schema)
        #expect(!sql.contains("CREATE TABLE IF NOT EXISTS \"events\""))
        #expect(!sql.contains("TRIGGER"))
        #expect(sql.contains("consumer_checkpoints"))
    }
}
