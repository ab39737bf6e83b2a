import ArgumentParser
import Encryption
import EventStore
import Foundation
import Postgres

/// `projectionist migrations ...`: SQL files for your own migration tool.
struct MigrationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrations", abstract: "Work with the SQL migration.", subcommands: [GenerateCommand.self])
}

/// `projectionist migrations generate`: writes the migration SQL; needs no config and no database.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Write the schema migration as a SQL file (no config, no database).")

    @Option(help: "Directory to write into (created if missing).") var output: String
    @Option(help: "File name (default: <UTC timestamp>_projectionist.sql).") var filename: String?
    @Option(help: "Events table (schema.table allowed).") var eventsTable = "events"
    @Option(help: "Aggregate heads table.") var aggregateHeadsTable = "aggregate_heads"
    @Option(help: "Checkpoints table.") var checkpointsTable = "consumer_checkpoints"
    @Option(help: "Gap audit table.") var gapSkipsTable = "consumer_gap_skips"
    @Option(help: "Dead letter table.") var deadLettersTable = "consumer_dead_letters"
    @Option(help: "Channel of the notify trigger: ASCII letters, digits, '_', '.', '-'; at most 63 bytes.") var notifyChannel = "projectionist_events"
    @Flag(help: "Install the notify trigger (lower latency, about 20 % less append throughput for concurrent writers).")
    var notifyTrigger = false
    @Flag(help: "Leave out the notify trigger (the default).") var noNotifyTrigger = false
    @Flag(help: "Add the encryption key table (eventsalsa/encryption's layout).") var encryption = false
    @Option(help: "Encryption key table, with --encryption.") var keysTable = "infrastructure.encryption_keys"

    func validate() throws {
        if self.notifyTrigger && self.noNotifyTrigger {
            throw ValidationError("--notify-trigger and --no-notify-trigger contradict each other")
        }
        _ = try self.schema()
        _ = try self.keysTableName()
        if let filename, filename.isEmpty || filename.contains("/") {
            throw ValidationError("--filename must be a plain file name without '/'")
        }
    }

    func schema() throws -> Schema {
        func name(_ text: String, _ flag: String) throws -> QualifiedName {
            do { return try QualifiedName(parsing: text) } catch {
                throw ValidationError("\(flag) '\(text)' is not a table name: use name or schema.name")
            }
        }
        var schema = Schema()
        schema.eventsTable = try name(self.eventsTable, "--events-table")
        schema.aggregateHeadsTable = try name(self.aggregateHeadsTable, "--aggregate-heads-table")
        schema.checkpointsTable = try name(self.checkpointsTable, "--checkpoints-table")
        schema.gapSkipsTable = try name(self.gapSkipsTable, "--gap-skips-table")
        schema.deadLettersTable = try name(self.deadLettersTable, "--dead-letters-table")
        if let problem = NotifyChannel.problem(with: self.notifyChannel) { throw ValidationError("--notify-channel \(problem)") }
        schema.notifyChannel = self.notifyChannel.isEmpty ? nil : self.notifyChannel
        schema.notifyTrigger = self.notifyTrigger && !self.noNotifyTrigger
        return schema
    }

    func keysTableName() throws -> QualifiedName {
        do { return try QualifiedName(parsing: self.keysTable) } catch {
            throw ValidationError("--keys-table '\(self.keysTable)' is not a table name: use name or schema.name")
        }
    }

    func run() throws {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMddHHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        let name = self.filename ?? "\(formatter.string(from: Date()))_projectionist.sql"
        let directory = URL(fileURLWithPath: self.output, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let file = directory.appendingPathComponent(name)
            var sql = Migration.sql(for: try self.schema())
            if self.encryption { sql += "\n" + KeyStore.migrationSQL(table: try self.keysTableName()) + "\n" }
            try sql.write(to: file, atomically: true, encoding: .utf8)
            print(file.path)
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("error: cannot write \(directory.appendingPathComponent(name).path): \(error.localizedDescription)")
            throw ExitStatus.cannotCreate.exitCode
        }
    }
}
