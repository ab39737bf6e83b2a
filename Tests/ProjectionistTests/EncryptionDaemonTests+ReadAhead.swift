import Encryption
import EventStore
import Foundation
import Glibc
import Postgres
import TestSupport
import Testing

/// The daemon's pipelined path: a batch read ahead (decrypted under the read-ahead's snapshot)
/// re-checks its keys just before it is applied.
extension EncryptionDaemonTests {
    @Test("SQL handlers, batches of 2: keys destroyed while o3's batch runs (o5 already decrypted ahead) leave o5's email null")
    func destroyedWhileReadAhead() async throws {
        let db = try await TestDatabase.fresh("encahead")
        let (directory, keys) = try Self.keyDirectory(["k1"])
        let config = TestDaemonConfig(
            db, worker: "  batch_size: 2", sections: "encryption:\n  system_keys: \(directory)\n  active_key: k1",
            projections: """
              - name: order_emails
                aggregate_types: [Order]
                decrypt: true
                setup: CREATE TABLE IF NOT EXISTS order_emails (order_id text PRIMARY KEY, email text)
                reset: TRUNCATE order_emails
                handlers:
                  OrderPlaced:
                    - SELECT pg_sleep(CASE WHEN $aggregate_id = 'o3' THEN 3 ELSE 0 END)
                    - INSERT INTO order_emails (order_id, email) VALUES ($aggregate_id, $payload->>'customer_email')
            """
        ).write()
        defer { TemporaryFile.remove(config); try? FileManager.default.removeItem(atPath: directory) }
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        let connection = try await db.connect()
        let keyStore = KeyStore(keyring: try SystemKeyring(keys: keys, activeKeyID: "k1"))
        for index in 1...6 {
            try await Self.placeOrder("o\(index)", customer: "c\(index)", email: "buyer\(index)@example.com", keyStore: keyStore, on: connection)
        }
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        // o3's handler sleeps on the server; meanwhile the reader has read and decrypted o5, o6.
        try await eventually("o3's handler is running", timeout: .seconds(20), every: .milliseconds(10)) {
            try await activeStatements(like: "%pg_sleep%", on: connection) > 0
        }
        try await Task.sleep(for: .milliseconds(500))
        try await connection.transaction { tx in _ = try await keyStore.destroyKeys(scope: Self.scope, scopeID: "c5", on: tx) }
        try await Self.caughtUp(config, connection)
        let emails = try await Self.emails(connection)
        #expect(emails.count == 6 && emails["o6"] == "buyer6@example.com", "\(emails)")
        #expect(emails["o5"] == .some(nil), "c5 was forgotten before o5 applied: \(String(describing: emails["o5"]))")
    }
}
