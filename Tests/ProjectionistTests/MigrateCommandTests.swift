import Foundation
import Postgres
@testable import ProjectionistApp
import Synchronization
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(2)))
struct MigrateCommandTests {
    @Test("migrate on a live database never deadlocks appends (it takes the event store's locks in the writers' order)")
    func migrateUnderWriters() async throws {
        let db = try await TestDatabase.fresh("cli_migrate_live")
        let config = try ProjectionistConfiguration.parse("database:\n  url: \"\(db.connectionString)\"\n", file: "live.yaml")
        let migrator = Migrator(configuration: config)
        let admin = try await db.connect()
        try await migrator.migrate(on: admin)
        final class Shared: Sendable {
            let stop = Mutex(false)
            let failures = Mutex<[String]>([])
        }
        let shared = Shared()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    let connection = try await db.connect()
                    var index = 0
                    while !shared.stop.withLock({ $0 }), !Task.isCancelled {
                        do {
                            _ = try await appendOrder("w\(writer)-\(index)", seed: index, on: connection)
                        } catch {
                            shared.failures.withLock { $0.append("append: \(error)") }
                        }
                        index += 1
                    }
                }
            }
            do {
                for _ in 0..<25 { try await migrator.migrate(on: admin) }
            } catch {
                shared.failures.withLock { $0.append("migrate: \(error)") }
            }
            shared.stop.withLock { $0 = true }
            try await group.waitForAll()
        }
        let errors = shared.failures.withLock { $0 }
        #expect(errors.isEmpty, "appends failed while migrate ran: \(errors.prefix(3))")
        #expect(try await admin.query("SELECT count(*) FROM events")[0].decode(Int64.self, at: 0) > 0)
    }

    @Test("migrate twice is fine, runs projection setup, and the tables exist")
    func migrateTwice() async throws {
        let db = try await TestDatabase.fresh("cli_migrate")
        let config = TemporaryFile.write(
            """
            database:
              url: "\(db.connectionString)"
            projections:
              - name: counter
                setup: |
                  CREATE TABLE IF NOT EXISTS counter (n bigint NOT NULL);
                  INSERT INTO counter SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counter);
                handlers:
                  X: UPDATE counter SET n = n + 1
            """)
        defer { TemporaryFile.remove(config) }
        for _ in 0..<2 {
            let output = try await ProjectionistProcess.run(["migrate", "--config", config])
            #expect(output.status == 0, "stderr: \(output.stderr)")
        }
        let connection = try await db.connect()
        let tables = try await connection.query(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
        #expect(
            try tables[0].decode(String.self, at: 0)
                == "aggregate_heads,consumer_assignments,consumer_checkpoints,consumer_dead_letters,consumer_gap_skips,counter,events,worker_nodes")
        #expect(try await connection.query("SELECT count(*) FROM counter")[0].decode(Int64.self, at: 0) == 1)
    }

    @Test("migrate with a broken setup statement names the projection and exits 78, leaving nothing half-done")
    func brokenSetup() async throws {
        let db = try await TestDatabase.fresh("cli_migrate_bad")
        let config = TemporaryFile.write(
            """
            database:
              url: "\(db.connectionString)"
            projections:
              - name: broken_v1
                setup: CREATE TABLE oops (
                handlers:
                  X: SELECT 1
            """)
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(output.status == 78)
        #expect(output.stderr.contains("projections.broken_v1.setup"), "\(output.stderr)")
        let connection = try await db.connect()
        #expect(try await connection.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0].decode(Int64.self, at: 0) == 0)
    }

    @Test("migrate with a bad store.notify_channel exits 78 naming the file and the key, before connecting")
    func badNotifyChannel() async throws {
        let config = TemporaryFile.write(
            """
            database:
              url: "host=127.0.0.1 port=1 dbname=x"
              startup_timeout: 1s
            store:
              notify_channel: "events'; DROP TABLE events; --"
            """)
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(output.status == 78)
        #expect(output.stderr.contains("\(config):5: store.notify_channel:"), "\(output.stderr)")
    }

    @Test("migrate against an unreachable database exits 69 after the startup timeout")
    func unreachable() async throws {
        let config = TemporaryFile.write(
            """
            database:
              url: "host=127.0.0.1 port=1 dbname=x password=hunter2-secret"
              startup_timeout: 1s
            """)
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(["migrate", "--config", config], environment: ["PROJECTIONIST_DATABASE_URL": nil, "DATABASE_URL": nil])
        #expect(output.status == 69)
        #expect(output.stderr.contains("database unreachable"))
        #expect(!output.stderr.contains("hunter2"))
    }

    @Test("migrations generate: writes the file, refuses bad names (64) and a missing --output (64)")
    func generate() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID())").path
        defer { TemporaryFile.remove(directory) }
        let ok = try await ProjectionistProcess.run([
            "migrations", "generate", "--output", directory, "--events-table", "app.events", "--no-notify-trigger",
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files.count == 1)
        #expect(files[0].range(of: #"^\d{14}_projectionist\.sql$"#, options: .regularExpression) != nil)
        let sql = try String(contentsOfFile: "\(directory)/\(files[0])", encoding: .utf8)
        #expect(sql.contains(#"CREATE SCHEMA IF NOT EXISTS "app";"#))
        #expect(!sql.contains("TRIGGER"))

        let named = try await ProjectionistProcess.run(["migrations", "generate", "--output", directory, "--filename", "001.sql"])
        #expect(named.status == 0)
        #expect(!(try String(contentsOfFile: "\(directory)/001.sql", encoding: .utf8)).contains("TRIGGER"))  // opt-in
        let withTrigger = try await ProjectionistProcess.run([
            "migrations", "generate", "--output", directory, "--filename", "002.sql", "--notify-trigger", "--notify-channel", "wake_up",
        ])
        #expect(withTrigger.status == 0)
        let triggerSQL = try String(contentsOfFile: "\(directory)/002.sql", encoding: .utf8)
        #expect(triggerSQL.contains("AFTER INSERT ON \"events\""))
        #expect(triggerSQL.contains(#"EXECUTE FUNCTION "events_notify"('wake_up');"#))

        #expect(try await ProjectionistProcess.run(["migrations", "generate"]).status == 64)
        let bad = try await ProjectionistProcess.run(["migrations", "generate", "--output", directory, "--events-table", "a.b.c"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--events-table"))
        let badChannel = try await ProjectionistProcess.run([
            "migrations", "generate", "--output", directory, "--notify-trigger", "--notify-channel", "x$projectionist$y",
        ])
        #expect(badChannel.status == 64)
        #expect(badChannel.stderr.contains("--notify-channel"), "\(badChannel.stderr)")
        #expect(try await ProjectionistProcess.run(["migrations", "generate", "--output", directory, "--frobnicate"]).status == 64)
        #expect(try await ProjectionistProcess.run(["frobnicate"]).status == 64)
    }

    @Test("the encryption key table: migrations generate --encryption writes it, migrate creates it when encryption is configured and not otherwise")
    func encryptionKeyTable() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID())").path
        defer { TemporaryFile.remove(directory) }
        let plain = try await ProjectionistProcess.run(["migrations", "generate", "--output", directory, "--filename", "plain.sql"])
        #expect(plain.status == 0)
        #expect(!(try String(contentsOfFile: "\(directory)/plain.sql", encoding: .utf8)).contains("encryption_keys"))
        let generated = try await ProjectionistProcess.run([
            "migrations", "generate", "--output", directory, "--filename", "keys.sql", "--encryption", "--keys-table", "secrets.data_keys",
        ])
        #expect(generated.status == 0, "\(generated.stderr)")
        let sql = try String(contentsOfFile: "\(directory)/keys.sql", encoding: .utf8)
        #expect(sql.contains(#"CREATE SCHEMA IF NOT EXISTS "secrets";"#) && sql.contains(#"CREATE TABLE IF NOT EXISTS "secrets"."data_keys""#))
        let bad = try await ProjectionistProcess.run(["migrations", "generate", "--output", directory, "--encryption", "--keys-table", "a.b.c"])
        #expect(bad.status == 64 && bad.stderr.contains("--keys-table"), "\(bad.stderr)")

        let db = try await TestDatabase.fresh("migratekeys")
        let connection = try await db.connect()
        let exists = "SELECT to_regclass('infrastructure.encryption_keys') IS NOT NULL"
        let without = TemporaryFile.write("database:\n  url: \"\(db.connectionString)\"\n")
        let with = TemporaryFile.write(
            "database:\n  url: \"\(db.connectionString)\"\nencryption:\n  system_keys: /nonexistent\n  active_key: k1\n")
        defer { TemporaryFile.remove(without); TemporaryFile.remove(with) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", without]).status == 0)
        #expect(try await connection.query(exists)[0].decode(Bool.self, at: 0) == false)
        let migrated = try await ProjectionistProcess.run(["migrate", "--config", with])  // needs no key file
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(try await connection.query(exists)[0].decode(Bool.self, at: 0))
    }
}
