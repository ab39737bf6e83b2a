import ArgumentParser
import Logging
import Postgres
import Projections

/// What the operator commands share: the configuration, a connection that waits for the
/// database, and a projection named on the command line.
extension ConfigOption {
    /// `--config`, else `$PROJECTIONIST_CONFIG`, else the system path, read and validated.
    func load() throws -> ProjectionistConfiguration {
        try ProjectionistConfiguration.load(path: ProjectionistConfiguration.path(option: self.config))
    }
}

extension ProjectionistConfiguration {
    /// A connection, retrying until `database.startup_timeout` (then exit 69).
    func connect(for command: String) async throws -> PostgresConnection {
        try await DatabaseConnector.connect(
            try self.connectionConfiguration(), timeout: self.database.startupTimeout, logger: Logger(label: "projectionist.\(command)"),
            waiting: { printError("\(command): \($0)") })
    }

    /// Exits 64 listing the configured projections unless every one of `names` is configured.
    func requireProjections(_ names: [String]) throws {
        let configured = self.projections.map(\.name)
        for name in names where !configured.contains(name) {
            printError("error: no projection named '\(name)' in \(self.file); configured: \(configured.isEmpty ? "none" : configured.joined(separator: ", "))")
            throw ExitStatus.usage.exitCode
        }
    }

    /// The SQL projection named `name`; exits 64 listing the configured ones when there is none.
    func requireProjection(named name: String) throws -> SQLProjection {
        try self.requireProjections([name])
        return try self.sqlProjection(named: name)!
    }
}
