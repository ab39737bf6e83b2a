import Crypto
import Encryption
import EventStore
import Foundation
import Glibc
import Postgres
import Projections
import TestSupport
import Testing

/// A key reference the key table cannot hold (a version beyond `INT`, a NUL in the scope id)
/// fails its own event, which follows `on_error`; it never stalls the projection.
extension EncryptionDaemonTests {
    /// Appends an OrderPlaced whose encrypted email's `$encrypted` body is altered by `edit`
    /// (its JSON text, members in the documented order).
    static func placeOrder(
        _ order: String, customer: String, keyStore: KeyStore, on connection: PostgresConnection, edit: (String) -> String
    ) async throws {
        try await connection.transaction { tx in
            let field = try await FieldEncryptor(keyStore: keyStore).encrypt("\(order)@example.com", scope: Self.scope, scopeID: customer, on: tx)
            let encrypted = edit(String(decoding: field.jsonBytes, as: UTF8.self))
            let payload = #"{"customer_id": "\#(customer)", "customer_email": \#(encrypted)}"#
            _ = try await EventStore().append(
                [Event(aggregateType: "Order", aggregateID: order, eventType: "OrderPlaced", payload: Array(payload.utf8))],
                expected: .noStream, in: tx)
        }
    }

    @Test("key_version 3000000000 and a NUL in scope_id fail only their events: skip dead-letters them and applies the rest to the end; stop parks before the first")
    func unstorableKeyReferences() async throws {
        let db = try await TestDatabase.fresh("enckeyref")
        let (directory, keys) = try Self.keyDirectory(["k1"])
        let config = Self.constraintConfig(db, keys: directory, port: HTTPGet.freePort())
        defer { TemporaryFile.remove(config); try? FileManager.default.removeItem(atPath: directory) }
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        let connection = try await db.connect()
        let keyStore = KeyStore(keyring: try SystemKeyring(keys: keys, activeKeyID: "k1"))
        let unchanged: (String) -> String = { $0 }
        try await Self.placeOrder("o1", customer: "c1", keyStore: keyStore, on: connection, edit: unchanged)
        try await Self.placeOrder("o2", customer: "c2", keyStore: keyStore, on: connection) {
            $0.replacingOccurrences(of: #""key_version":1"#, with: #""key_version":3000000000"#)
        }
        try await Self.placeOrder("o3", customer: "c3", keyStore: keyStore, on: connection, edit: unchanged)
        try await Self.placeOrder("o4", customer: "c4", keyStore: keyStore, on: connection) {
            $0.replacingOccurrences(of: #""scope_id":"c4""#, with: #""scope_id":"c4\u0000x""#)
        }
        try await Self.placeOrder("o5", customer: "c5", keyStore: keyStore, on: connection, edit: unchanged)

        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await eventually("emails_skip reaches the end, emails_stop parks at o2", timeout: .seconds(20)) {
            let json = try await statusJSON(config)
            return projectionState(json, "emails_skip")["position"] as? Int == 5
                && projectionState(json, "emails_stop")["state"] as? String == "failed"
        }
        var applied: [String: String?] = [:]
        for row in try await connection.query("SELECT order_id, email FROM emails_skip") {
            applied[try row.decode(String.self, at: 0)] = try row.decode(String?.self, at: 1)
        }
        #expect(applied == ["o1": "o1@example.com", "o3": "o3@example.com", "o5": "o5@example.com"])
        let letters = try await connection.query(
            "SELECT global_position, error FROM consumer_dead_letters WHERE consumer_name = 'emails_skip' ORDER BY global_position")
        #expect(try letters.map { try $0.decode(Int64.self, at: 0) } == [2, 4])
        for letter in letters {
            let error = try letter.decode(String.self, at: 1)
            #expect(error.contains("malformed") && error.contains("customer_email"), "\(error)")
        }
        #expect(try await CheckpointStore().position("emails_stop", on: connection) == 1, "stop parks just before o2")
        #expect(try await connection.query("SELECT order_id FROM emails_stop").count == 1)
    }
}
