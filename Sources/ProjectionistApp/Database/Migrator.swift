import EventStore
import Postgres

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
