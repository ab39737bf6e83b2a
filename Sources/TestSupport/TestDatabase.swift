import Foundation
import Postgres

/// A database of its own for one test suite, on the server `scripts/test` started.
///
/// The server's connection comes from `PROJECTIONIST_TEST_DATABASE` (a libpq keyword string).
/// Without it, `fresh()` fails with a message saying to run `scripts/test`: tests that need
/// PostgreSQL are never skipped silently.
public struct TestDatabase: Sendable {
    /// Keyword string of the new database.
    public let connectionString: String
    public let name: String

    public var configuration: ConnectionConfiguration {
        ConnectionConfiguration(connectionString: self.connectionString, applicationName: "projectionist-test")
    }

    /// The configuration the runtime under test uses (`application_name` projectionist, so a
    /// test can find and terminate its backends).
    public var runtimeConfiguration: ConnectionConfiguration {
        ConnectionConfiguration(connectionString: self.connectionString, applicationName: "projectionist")
    }

    /// Keyword string of the server's maintenance database.
    public static func serverConnectionString() throws -> String {
        guard let value = ProcessInfo.processInfo.environment["PROJECTIONIST_TEST_DATABASE"], !value.isEmpty else {
            throw PostgresError(
                code: .usage,
                message: "PROJECTIONIST_TEST_DATABASE is not set: run the tests with scripts/test, which starts PostgreSQL")
        }
        return value
    }

    /// Creates an empty database with a unique name.
    public static func fresh(_ label: String = "test") async throws -> TestDatabase {
        let server = try serverConnectionString()
        let admin = try await PostgresConnection.connect(ConnectionConfiguration(connectionString: server))
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let name = "\(label.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" })_\(suffix)"
        try await admin.query("CREATE DATABASE \(QualifiedName.quoteIdentifier(name))")
        await admin.close()
        return TestDatabase(connectionString: "\(server) dbname=\(name)", name: name)
    }

    /// A new connection to this database.
    public func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(self.configuration)
    }
}

import EventStore

extension TestDatabase {
    /// A fresh database with the whole schema migrated (default names unless `schema` says otherwise).
    public static func migrated(_ label: String = "test", schema: Schema = Schema()) async throws -> TestDatabase {
        let database = try await fresh(label)
        let connection = try await database.connect()
        try await connection.execute(script: Migration.sql(for: schema))
        await connection.close()
        return database
    }
}
