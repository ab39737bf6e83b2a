import EventStore
import Postgres
import Projections

/// Applies the migration, every projection's `setup` and the published views (each over the
/// table of the projection serving it) in one transaction.
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
            let publications = Publications(schema: self.configuration.schema, projections: try self.configuration.sqlProjections())
            try await publications.verify(requireViews: false, on: tx)
            try await publications.createMissingViews(on: tx)
        }
    }
}
