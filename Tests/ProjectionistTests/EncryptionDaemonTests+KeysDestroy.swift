import Encryption
import Foundation
import Postgres
import TestSupport
import Testing

/// `keys destroy`: what it says when it destroyed nothing, and its confirmation on a terminal.
extension EncryptionDaemonTests {
    /// Runs `projectionist ARGUMENTS` on a pseudo-terminal (`script(1)`), typing `input`.
    static func onTerminal(_ arguments: [String], input: String) async throws -> (status: Int32, output: String) {
        try await offThePool { try Self.onTerminalBlocking(arguments, input: input) }
    }

    private static func onTerminalBlocking(_ arguments: [String], input: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        let command = ([ProjectionistProcess.executable.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
        process.arguments = ["-qec", command, "/dev/null"]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? stdin.fileHandleForWriting.close()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    static func versions(_ customer: String, _ connection: PostgresConnection) async throws -> Int64 {
        try await connection.query("SELECT count(*) FROM infrastructure.encryption_keys WHERE scope_id = $1", [customer])[0].decode(Int64.self, at: 0)
    }

    @Test("keys destroy: nothing to destroy says so in the audit line and on stdout (exit 0); on a terminal it asks, and only yes destroys; --yes and no terminal do not ask")
    func destroyConfirmation() async throws {
        let setup = try await Self.setUp("enckeysdestroy", keys: ["k1"], active: "k1")
        defer { setup.remove() }
        let (config, connection, keyStore) = (setup.config, setup.connection, setup.keyStore)
        for customer in ["c1", "c2"] {
            try await Self.placeOrder("o-\(customer)", customer: customer, email: "\(customer)@example.com", keyStore: keyStore, on: connection)
        }
        #expect(try await keyStore.rotateKey(scope: Self.scope, scopeID: "c1", on: connection) == 2)

        let nothing = try await ProjectionistProcess.run(["keys", "destroy", Self.scope, "nobody", "--config", config])
        #expect(nothing.status == 0, "\(nothing.stderr)")
        #expect(nothing.stdout.contains("nothing destroyed"), "\(nothing.stdout)")
        #expect(nothing.stderr.contains("nothing destroyed") && !nothing.stderr.contains("Destroyed"), "the audit line: \(nothing.stderr)")

        let declined = try await Self.onTerminal(["keys", "destroy", Self.scope, "c1", "--config", config], input: "no\n")
        #expect(declined.status == 1, "\(declined.output)")
        #expect(declined.output.contains("destroy 2 version(s)") && declined.output.contains("nothing destroyed"), "\(declined.output)")
        #expect(try await Self.versions("c1", connection) == 2)

        let confirmed = try await Self.onTerminal(["keys", "destroy", Self.scope, "c1", "--config", config], input: "yes\n")
        #expect(confirmed.status == 0, "\(confirmed.output)")
        #expect(confirmed.output.contains("Destroyed 2 version(s)") && confirmed.output.contains("destroyed 2 version(s)"), "\(confirmed.output)")
        #expect(try await Self.versions("c1", connection) == 0)

        let unasked = try await Self.onTerminal(["keys", "destroy", Self.scope, "c2", "--yes", "--config", config], input: "")
        #expect(unasked.status == 0 && !unasked.output.contains("Type yes"), "\(unasked.output)")
        #expect(try await Self.versions("c2", connection) == 0)
    }
}
