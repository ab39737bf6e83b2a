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
    @Option(help: "Columns and heads table: aggregate (aggregate_*, aggregate_heads) or stream (stream_*, stream_heads; eventsalsa/store 0.1 and later).")
    var layout = "aggregate"
    @Option(help: "Aggregate heads table, with --layout aggregate (default aggregate_heads).") var aggregateHeadsTable: String?
    @Option(help: "Stream heads table, with --layout stream (default stream_heads).") var streamHeadsTable: String?
    @Option(help: "The events table: none (a plain table) or native (RANGE partitions on global_position).")
    var partitioning = "none"
    @Option(help: "Positions per range, with --partitioning native (default 10000000).") var partitionSize: Int64?
    @Option(help: "Ranges created up front, 1 to 1000, with --partitioning native (default 4).") var initialPartitions: Int?
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
        guard let layout = EventLayout(rawValue: self.layout) else {
            throw ValidationError("--layout '\(self.layout)' is not aggregate or stream")
        }
        schema.layout = layout
        let (heads, other) = layout == .stream ? (self.streamHeadsTable, self.aggregateHeadsTable) : (self.aggregateHeadsTable, self.streamHeadsTable)
        let flag = "--\(layout.headsTableKey.replacingOccurrences(of: "_", with: "-"))"
        if other != nil {
            let otherLayout: EventLayout = layout == .stream ? .aggregate : .stream
            throw ValidationError(
                "--\(otherLayout.headsTableKey.replacingOccurrences(of: "_", with: "-")) is for --layout \(otherLayout.rawValue): with --layout \(layout.rawValue) name the heads table with \(flag)")
        }
        schema.headsTable = try name(heads ?? layout.defaultHeadsTable.name, flag)
        schema.partitioning = try self.eventPartitioning()
        schema.checkpointsTable = try name(self.checkpointsTable, "--checkpoints-table")
        schema.gapSkipsTable = try name(self.gapSkipsTable, "--gap-skips-table")
        schema.deadLettersTable = try name(self.deadLettersTable, "--dead-letters-table")
        if let problem = NotifyChannel.problem(with: self.notifyChannel) { throw ValidationError("--notify-channel \(problem)") }
        schema.notifyChannel = self.notifyChannel.isEmpty ? nil : self.notifyChannel
        schema.notifyTrigger = self.notifyTrigger && !self.noNotifyTrigger
        return schema
    }

    func eventPartitioning() throws -> EventPartitioning {
        switch self.partitioning {
        case "none":
            if self.partitionSize != nil || self.initialPartitions != nil {
                throw ValidationError("--partition-size and --initial-partitions need --partitioning native")
            }
            return .none
        case "native":
            let size = self.partitionSize ?? EventPartitioning.defaultSize
            let initial = self.initialPartitions ?? EventPartitioning.defaultInitial
            guard Bounds.partitionSize.contains(Int(size)) else {
                throw ValidationError("--partition-size \(size) is outside \(Bounds.partitionSize.lowerBound)...\(Bounds.partitionSize.upperBound)")
            }
            guard Bounds.initialPartitions.contains(initial) else {
                throw ValidationError("--initial-partitions \(initial) is outside \(Bounds.initialPartitions.lowerBound)...\(Bounds.initialPartitions.upperBound)")
            }
            return .native(size: size, initial: initial)
        default:
            throw ValidationError("--partitioning '\(self.partitioning)' is not none or native")
        }
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
