import ArgumentParser
import EventStore
import Logging
import Postgres

/// `projectionist migrate`: creates what is missing, idempotently.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the event store, worker tables, notify trigger and each projection's setup SQL (idempotent).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await withExitCodes {
            let logger = Logger(label: "projectionist.migrate")
            let config = try ProjectionistConfiguration.load(path: ProjectionistConfiguration.path(option: self.options.config))
            let connection = try await DatabaseConnector.connect(
                try config.connectionConfiguration(), timeout: config.database.startupTimeout, logger: logger)
            try await Migrator(configuration: config).migrate(on: connection)
            print("migrated: \(config.schema.eventsTable), \(config.schema.checkpointsTable), \(config.projections.count) projection setup(s)")
        }
    }
}
