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

/// Applies the migration and every projection's `setup` in one transaction.
public struct Migrator: Sendable {
    public let configuration: ProjectionistConfiguration

    public init(configuration: ProjectionistConfiguration) { self.configuration = configuration }

    public func migrate(on connection: PostgresConnection) async throws {
        try await connection.transaction { tx in
            // Concurrent migrations would race on CREATE ... IF NOT EXISTS; one at a time.
            try await tx.query("SELECT pg_advisory_xact_lock(hashtext('projectionist.migrate'))")
            try await tx.execute(script: Migration.sql(for: self.configuration.schema))
            for projection in self.configuration.projections {
                guard let setup = projection.setup, !setup.trimmingSpaces.isEmpty else { continue }
                do {
                    try await tx.execute(script: setup)
                } catch let error as PostgresError {
                    throw ConfigurationError(
                        file: self.configuration.file, keyPath: "projections.\(projection.name).setup", line: projection.line,
                        message: "setup SQL failed: \(error)")
                }
            }
        }
    }
}
