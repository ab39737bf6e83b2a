import Encryption
import EventStore
import Postgres
import Projections

/// Applies the migration, every projection's `setup` and the published views (each over the
/// table of the projection serving it) in one transaction, and has the server check every
/// handler statement against the result before it commits (`HandlerCheck`).
public struct Migrator: Sendable {
    public let configuration: ProjectionistConfiguration

    public init(configuration: ProjectionistConfiguration) { self.configuration = configuration }

    /// Appends lock `aggregate_heads`, then `events`; `CREATE INDEX IF NOT EXISTS` takes a SHARE
    /// lock on each table even when the index exists, events first. Taking both up front, in the
    /// writers' order, makes a concurrent append wait for the migration (a few ms) instead of
    /// deadlocking with it.
    func lockEventStore(in tx: Transaction) async throws {
        let schema = self.configuration.schema
        guard schema.manageEventStore else { return }
        let heads = schema.headsTable.quoted, events = schema.eventsTable.quoted
        let exist = try await tx.query("SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL", [heads, events])
        guard try exist[0].decode(Bool.self, at: 0) else { return }
        try await tx.query("LOCK TABLE \(heads), \(events) IN SHARE MODE")
    }

    /// Migrates and commits.
    /// - Returns: a line for each thing done beyond `CREATE ... IF NOT EXISTS` (a partition
    ///   created, a checkpoint copied from eventsalsa/projector), for the operator.
    /// - Throws: `ConfigurationError` for a failing `setup` or a handler statement the server
    ///   refuses (nothing is committed then), `SchemaError` for a published view that clashes.
    @discardableResult
    public func migrate(on connection: PostgresConnection) async throws -> [String] {
        try await connection.transaction { tx in try await self.apply(in: tx).notes }
    }

    /// `projectionist check`: everything `migrate` does, in a transaction rolled back at the end.
    /// - Returns: how many handler statements the server accepted.
    /// - Throws: what `migrate` would.
    public func check(on connection: PostgresConnection) async throws -> Int {
        struct RolledBack: Error { var statements: Int }
        do {
            try await connection.transaction { (tx: Transaction) async throws -> Void in
                throw RolledBack(statements: try await self.apply(in: tx).statements)
            }
        } catch let done as RolledBack {
            return done.statements
        }
        return 0
    }

    /// The migration's statements, in `tx`; returns how many handler statements were checked,
    /// and the lines `migrate` prints.
    func apply(in tx: Transaction) async throws -> (statements: Int, notes: [String]) {
        // Concurrent migrations would race on CREATE ... IF NOT EXISTS; one at a time.
        try await tx.query("SELECT pg_advisory_xact_lock(hashtext('projectionist.migrate'))")
        try await self.lockEventStore(in: tx)
        var schema = self.configuration.schema
        if case .native(let size, _) = schema.partitioning,
            try await tx.query("SELECT to_regclass($1) IS NOT NULL", [schema.eventsTable.quoted])[0].decode(Bool.self, at: 0)
        {
            schema.partitioning = .native(size: size, initial: 0)  // its ranges: PartitionMaintenance
        }
        try await tx.execute(script: Migration.sql(for: schema))
        var notes = try await PartitionMaintenance(schema: schema, file: self.configuration.file).run(in: tx)
        notes += try await ProjectorCheckpointImport(configuration: self.configuration).run(in: tx)
        if let encryption = self.configuration.encryption {
            try await tx.execute(script: KeyStore.migrationSQL(table: encryption.keysTable))
        }
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
        return (try await HandlerCheck(configuration: self.configuration).run(in: tx), notes)
    }
}
