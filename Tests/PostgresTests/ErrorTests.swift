import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct ErrorTests {
    @Test("a unique violation surfaces as 23505 with the constraint name")
    func uniqueViolation() async throws {
        let db = try await TestDatabase.fresh("errors")
        let connection = try await db.connect()
        try await connection.query("CREATE TABLE items (id int CONSTRAINT items_pkey PRIMARY KEY)")
        try await connection.query("INSERT INTO items VALUES (1)")
        let error = try await #require(throws: PostgresError.self) {
            try await connection.query("INSERT INTO items VALUES ($1)", [Int32(1)])
        }
        #expect(error.sqlState == "23505")
        #expect(error.constraint == "items_pkey")
        #expect(error.table == "items")
        #expect(error.isUniqueViolation)
        #expect(!error.isTransient)
        #expect(error.detail?.contains("(id)=(1)") == true)
        // The connection is still usable after a statement error.
        #expect(try await connection.query("SELECT 1")[0].decode(Int32.self, at: 0) == 1)
    }

    @Test(
        "classification: connection loss and retryable states are transient, the rest permanent",
        arguments: [
            ("08006", true), ("57P01", true), ("40001", true), ("40P01", true), ("53300", true), ("23505", false),
            ("42P01", false), ("22P02", false), ("57014", false),
        ])
    func classification(sqlState: String, transient: Bool) {
        #expect(PostgresError(code: .server, message: "x", sqlState: sqlState).isTransient == transient)
    }

    @Test("the password of a URL never appears in an error", arguments: [
        "postgres://projectionist:s3cr%40t-Pa55@127.0.0.1:1/app",
        "postgres://projectionist:s3cr%40t-Pa55@127.0.0.1:notaport/app",
        "postgresql://projectionist:s3cr%40t-Pa55@[::1:bad/app?sslmode=bogus",
        "host=127.0.0.1 port=1 user=projectionist password=s3cr@t-Pa55",
        "host=127.0.0.1 port=1 password='s3cr@t-Pa55' sslmode=nonsense",
        "postgres://127.0.0.1:1/app?password=s3cr@t-Pa55&sslmode=bogus",
    ])
    func passwordNeverInErrors(url: String) async throws {
        let error = try await #require(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(ConnectionConfiguration(connectionString: url, connectTimeoutSeconds: 2))
        }
        #expect(error.code == .connectionFailed)
        for text in [error.description, error.message, "\(error)", String(reflecting: error)] {
            #expect(!text.contains("s3cr"), "password leaked: \(text)")
            #expect(!text.contains("Pa55"), "password leaked: \(text)")
        }
        #expect(!"\(ConnectionConfiguration(connectionString: url))".contains("Pa55"))
    }

    @Test("a wrong password is reported without the password, a password file works")
    func passwordFile() async throws {
        let db = try await TestDatabase.fresh("password")
        let admin = try await db.connect()
        let role = "role_\(db.name)"
        try await admin.query("CREATE ROLE \(role) LOGIN PASSWORD 'right-Secret-9'")
        let tcp = try #require(ProcessInfo.processInfo.environment["PROJECTIONIST_TEST_TCP"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pw-\(UUID())").path
        try "right-Secret-9\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        var configuration = ConnectionConfiguration(connectionString: "\(tcp) user=\(role) dbname=\(db.name)")
        try configuration.readPassword(fromFile: file)
        let connection = try await PostgresConnection.connect(configuration)
        #expect(try await connection.query("SELECT current_user")[0].decode(String.self, at: 0) == role)

        let wrong = ConnectionConfiguration(
            connectionString: "\(tcp) user=\(role) dbname=\(db.name) password=wrong-Secret-7")
        let error = try await #require(throws: PostgresError.self) { _ = try await PostgresConnection.connect(wrong) }
        #expect(error.message.contains("password authentication failed"))
        #expect(!error.description.contains("wrong-Secret-7"))

        var missing = ConnectionConfiguration()
        #expect(throws: PostgresError.self) { try missing.readPassword(fromFile: "/nonexistent/pw") }
    }
}
