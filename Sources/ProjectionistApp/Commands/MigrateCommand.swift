import ArgumentParser
import EventStore
import Logging
import Postgres

/// `projectionist migrate`: creates what is missing, idempotently.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the event store, worker tables, notify trigger, encryption key table and each projection's setup SQL (idempotent).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await withExitCodes {
            let config = try self.options.load()
            let connection = try await config.connect(for: "migrate")
            for note in try await Migrator(configuration: config).migrate(on: connection) { print(note) }
            let keys = config.encryption.map { ", \($0.keysTable)" } ?? ""
            print("migrated: \(config.schema.eventsTable), \(config.schema.checkpointsTable)\(keys), \(config.projections.count) projection setup(s)")
        }
    }
}
