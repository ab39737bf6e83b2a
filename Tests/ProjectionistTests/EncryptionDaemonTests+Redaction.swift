import Crypto
import Encryption
import EventStore
import Foundation
import Glibc
import Postgres
import TestSupport
import Testing

/// Errors of projections with `decrypt: true`: nothing stored, logged or served quotes a
/// decrypted value (PostgreSQL's DETAIL echoes the failing row).
extension EncryptionDaemonTests {
    /// Two decrypting projections whose table refuses one domain's emails by a check constraint:
    /// `skip` dead-letters the event, `stop` parks before it (its error stays in the checkpoint).
    static func constraintConfig(_ db: TestDatabase, keys: String, port: Int) -> String {
        func projection(_ name: String, onError: String) -> String {
            """
              - name: \(name)
                aggregate_types: [Order]
                on_error: \(onError)
                decrypt: true
                setup: |
                  CREATE TABLE IF NOT EXISTS \(name) (order_id text PRIMARY KEY, email text,
                    CONSTRAINT \(name)_not_blocked CHECK (email NOT LIKE '%@blocked.example'))
                reset: TRUNCATE \(name)
                handlers:
                  OrderPlaced: INSERT INTO \(name) (order_id, email) VALUES ($aggregate_id, $payload->>'customer_email')
            """
        }
        return TemporaryFile.write(
            """
            \(TestDaemonConfig(db, listen: "127.0.0.1:\(port)").yaml)
            encryption:
              system_keys: \(keys)
              active_key: k1
            projections:
            \(projection("emails_skip", onError: "skip"))
            \(projection("emails_stop", onError: "stop"))
            """)
    }

    @Test("decrypt: true and a constraint the decrypted email breaks: the dead letter, last_error, status, /status and the log name the SQLSTATE, constraint and position, never the email; still so after keys destroy")
    func constraintErrorsRedacted() async throws {
        let db = try await TestDatabase.fresh("encredact")
        let (directory, keys) = try Self.keyDirectory(["k1"])
        let port = HTTPGet.freePort()
        let config = Self.constraintConfig(db, keys: directory, port: port)
        defer { TemporaryFile.remove(config); try? FileManager.default.removeItem(atPath: directory) }
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        let connection = try await db.connect()
        let keyStore = KeyStore(keyring: try SystemKeyring(keys: keys, activeKeyID: "k1"))
        try await Self.placeOrder("o1", customer: "c1", email: "bob@example.com", keyStore: keyStore, on: connection)
        try await Self.placeOrder("o2", customer: "c2", email: "alice@blocked.example", keyStore: keyStore, on: connection)
        try await Self.placeOrder("o3", customer: "c3", email: "carol@example.com", keyStore: keyStore, on: connection)
        let secret = "alice@blocked.example"

        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await eventually("emails_skip passes the bad event, emails_stop parks before it") {
            let json = try await statusJSON(config)
            return projectionState(json, "emails_skip")["position"] as? Int == 3
                && projectionState(json, "emails_stop")["state"] as? String == "failed"
                && projectionState(json, "emails_stop")["position"] as? Int == 1
        }

        /// Every place an error is kept or shown; `live` adds the daemon's own (log, /status).
        func stored(live: Bool) async throws -> [(String, String)] {
            var places: [(String, String)] = []
            for row in try await connection.query("SELECT error FROM consumer_dead_letters") {
                places.append(("consumer_dead_letters.error", try row.decode(String.self, at: 0)))
            }
            for row in try await connection.query("SELECT consumer_name, coalesce(last_error, '') FROM consumer_checkpoints") {
                places.append(("last_error of \(try row.decode(String.self, at: 0))", try row.decode(String.self, at: 1)))
            }
            let table = try await ProjectionistProcess.run(["status", "--config", config])
            let json = try await ProjectionistProcess.run(["status", "--json", "--config", config])
            places += [("status", table.stdout + table.stderr), ("status --json", json.stdout + json.stderr)]
            if live {
                places.append(("/status", try HTTPGet.get(port: port, "/status").body))
                places.append(("the daemon's log", daemon.stdout + daemon.stderr))
            }
            return places
        }

        let letters = try await connection.query("SELECT global_position, error FROM consumer_dead_letters")
        #expect(letters.count == 1)
        let letter = try letters.first?.decode(String.self, at: 1) ?? ""
        #expect(try letters.first?.decode(Int64.self, at: 0) == 2)
        #expect(letter.contains("23514") && letter.contains("emails_skip_not_blocked"), "\(letter)")
        let parked = try await connection.query("SELECT last_error FROM consumer_checkpoints WHERE consumer_name = 'emails_stop'")
        let parkedError = try parked.first?.decode(String?.self, at: 0) ?? nil
        #expect(parkedError?.contains("emails_stop_not_blocked") == true && parkedError?.contains("23514") == true
            && parkedError?.contains("position 2") == true, "\(parkedError ?? "nil")")
        for (place, text) in try await stored(live: true) {
            #expect(!text.contains(secret) && !text.contains("alice@"), "\(place) quotes the decrypted email: \(text)")
        }

        let destroy = try await ProjectionistProcess.run(["keys", "destroy", Self.scope, "c2", "--config", config])
        #expect(destroy.status == 0, "\(destroy.stderr)")
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
        for (place, text) in try await stored(live: false) + [("the daemon's log", daemon.stdout + daemon.stderr)] {
            #expect(!text.contains(secret) && !text.contains("alice@"), "after keys destroy, \(place) quotes the email: \(text)")
        }
    }
}
