import Crypto
import Encryption
import EventStore
import Foundation
import Glibc
import Postgres
import TestSupport
import Testing

/// The daemon's side of encryption: `decrypt: true`, crypto-shredding and a rebuild, re-wrapping,
/// and the keyrings refused at start. Every test drives the built executable against a real server.
@Suite(.timeLimit(.minutes(3)), .serialized)
struct EncryptionDaemonTests {
    static let scope = "customer-pii"

    /// A keyring directory with these ids (mode 700, files 600) and the keys.
    static func keyDirectory(_ ids: [String]) throws -> (String, [String: SymmetricKey]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var keys: [String: SymmetricKey] = [:]
        for id in ids { keys[id] = try Self.writeKey(id, in: directory) }
        return (directory, keys)
    }

    @discardableResult
    static func writeKey(_ id: String, in directory: String, mode: Int = 0o600, key: SymmetricKey = SymmetricKey(size: .bits256)) throws -> SymmetricKey {
        let path = "\(directory)/\(id).key"
        try key.withUnsafeBytes { Data($0).base64EncodedString() }.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return key
    }

    /// - Parameter decrypt: the projection's `decrypt:` value, YAML (indented for its entry).
    static func config(_ db: TestDatabase, keys: String, active: String, decrypt: String = "true", encryption: Bool = true) -> String {
        TemporaryFile.write(
            """
            database:
              url: "\(db.connectionString)"
              startup_timeout: 5s
            worker:
              poll_interval: 100ms
              max_poll_interval: 500ms
            metrics:
              listen: ""
            \(encryption ? "encryption:\n  system_keys: \(keys)\n  active_key: \(active)\n  key_cache_size: 2\n  key_cache_lifetime: 1h" : "")
            projections:
              - name: order_emails
                aggregate_types: [Order]
                on_error: skip
                decrypt: \(decrypt)
                setup: CREATE TABLE IF NOT EXISTS order_emails (order_id text PRIMARY KEY, customer_id text, email text, version bigint)
                reset: TRUNCATE order_emails
                handlers:
                  OrderPlaced: |
                    INSERT INTO order_emails (order_id, customer_id, email, version)
                    VALUES ($aggregate_id, $payload->>'customer_id', $payload->>'customer_email', $aggregate_version)
                    ON CONFLICT (order_id) DO NOTHING
            """)
    }

    /// Appends an OrderPlaced whose customer email is encrypted under the customer's active key
    /// (created with the event, in its transaction).
    static func placeOrder(_ order: String, customer: String, email: String, keyStore: KeyStore, on connection: PostgresConnection) async throws {
        try await connection.transaction { tx in
            let field = try await FieldEncryptor(keyStore: keyStore).encrypt(email, scope: Self.scope, scopeID: customer, on: tx)
            let payload = #"{"customer_id": "\#(customer)", "currency": "EUR", "customer_email": \#(String(decoding: field.jsonBytes, as: UTF8.self))}"#
            _ = try await EventStore().append(
                [Event(aggregateType: "Order", aggregateID: order, eventType: "OrderPlaced", payload: Array(payload.utf8))],
                expected: .noStream, in: tx)
        }
    }

    static func emails(_ connection: PostgresConnection) async throws -> [String: String?] {
        var result: [String: String?] = [:]
        for row in try await connection.query("SELECT order_id, email FROM order_emails") {
            result[try row.decode(String.self, at: 0)] = try row.decode(String?.self, at: 1)
        }
        return result
    }

    static func caughtUp(_ config: String, _ connection: PostgresConnection) async throws {
        let head = try await EventStore().latestPosition(on: connection)
        try await eventually("order_emails reaches position \(head)") {
            projectionState(try await statusJSON(config), "order_emails")["position"] as? Int == Int(head)
        }
    }

    /// A fresh database migrated with a keyring of `ids` (`active` wraps new keys) and the
    /// projection's configuration; the caller removes `config` and `directory`.
    struct Setup {
        var db: TestDatabase
        var directory: String
        var keys: [String: SymmetricKey]
        var config: String
        var connection: PostgresConnection
        var keyStore: KeyStore
        func remove() {
            TemporaryFile.remove(self.config)
            try? FileManager.default.removeItem(atPath: self.directory)
        }
    }

    static func setUp(_ label: String, keys ids: [String], active: String) async throws -> Setup {
        let db = try await TestDatabase.fresh(label)
        let (directory, keys) = try Self.keyDirectory(ids)
        let config = Self.config(db, keys: directory, active: active)
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        return Setup(
            db: db, directory: directory, keys: keys, config: config, connection: try await db.connect(),
            keyStore: KeyStore(keyring: try SystemKeyring(keys: keys, activeKeyID: active)))
    }

    @Test("decrypt: true projects the plaintext; after a rotation old and new events decrypt; destroy + reset rebuilds with that customer's emails null and no dead letters; nothing secret in the log")
    func projectRotateDestroyRebuild() async throws {
        let setup = try await Self.setUp("encdaemon", keys: ["k1"], active: "k1")
        defer { setup.remove() }
        let (config, connection, keyStore, keys) = (setup.config, setup.connection, setup.keyStore, setup.keys)
        for index in 1...6 {
            try await Self.placeOrder("o\(index)", customer: "c\(index % 3)", email: "buyer\(index)@example.com", keyStore: keyStore, on: connection)
        }
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await Self.caughtUp(config, connection)
        #expect(try await Self.emails(connection) == Dictionary(uniqueKeysWithValues: (1...6).map { ("o\($0)", "buyer\($0)@example.com") }))

        // Rotation: c1 gets version 2; its old events still decrypt with version 1.
        #expect(try await keyStore.rotateKey(scope: Self.scope, scopeID: "c1", on: connection) == 2)
        try await Self.placeOrder("o7", customer: "c1", email: "buyer7@example.com", keyStore: keyStore, on: connection)
        try await Self.caughtUp(config, connection)
        let afterRotation = try await Self.emails(connection)
        #expect(afterRotation["o7"] == "buyer7@example.com")
        #expect(afterRotation["o1"] == "buyer1@example.com")

        // Forget c1: its keys destroyed (audited), then a rebuild from 0 while the daemon runs.
        let destroy = try await ProjectionistProcess.run(["keys", "destroy", Self.scope, "c1", "--config", config])
        #expect(destroy.status == 0, "\(destroy.stderr)")
        #expect(destroy.stdout.contains("destroyed 2 version(s)"), "\(destroy.stdout)")
        #expect(destroy.stderr.contains("Destroyed 2 version(s) of a subject's data key") && destroy.stderr.contains("c1"), "the audit line: \(destroy.stderr)")
        let reset = try await ProjectionistProcess.run(["reset", "order_emails", "--config", config])
        #expect(reset.status == 0, "\(reset.stderr)")
        try await eventually("the rebuild applied all 7 orders") { try await Self.emails(connection).count == 7 }
        try await Self.caughtUp(config, connection)
        let rebuilt = try await Self.emails(connection)
        for order in ["o1", "o4", "o7"] { #expect(rebuilt[order] == .some(nil), "\(order) belongs to the forgotten customer: \(String(describing: rebuilt[order]))") }
        for order in ["o2", "o3", "o5", "o6"] { #expect(rebuilt[order]??.hasSuffix("@example.com") == true) }
        let deadLetters = try await connection.query("SELECT count(*) FROM consumer_dead_letters")[0].decode(Int64.self, at: 0)
        #expect(deadLetters == 0)

        daemon.signal(SIGTERM)
        let finished = await daemon.finish()
        #expect(finished.status == 0)
        let log = finished.stdout + finished.stderr
        #expect(!log.contains("@example.com"), "a decrypted value reached the log")
        for key in keys.values { #expect(!log.contains(key.withUnsafeBytes { Data($0).base64EncodedString() })) }
    }

    @Test("keys rewrap moves every data key under the new active system key (dry run counts first); the old key file can go and a rebuild still decrypts")
    func rewrapThenProject() async throws {
        let setup = try await Self.setUp("encrewrap", keys: ["old"], active: "old")
        defer { setup.remove() }
        let (db, directory, connection, keyStore) = (setup.db, setup.directory, setup.connection, setup.keyStore)
        for index in 1...5 {
            try await Self.placeOrder("o\(index)", customer: "c\(index)", email: "buyer\(index)@example.com", keyStore: keyStore, on: connection)
        }
        try Self.writeKey("new", in: directory)
        let newConfig = Self.config(db, keys: directory, active: "new")
        defer { TemporaryFile.remove(newConfig) }
        let dryRun = try await ProjectionistProcess.run(["keys", "rewrap", "--dry-run", "--config", newConfig])
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(dryRun.stdout.contains("5 data key(s) to re-wrap under system key 'new'"), "\(dryRun.stdout)")
        let rewrap = try await ProjectionistProcess.run(["keys", "rewrap", "--batch", "2", "--config", newConfig])
        #expect(rewrap.status == 0, "\(rewrap.stderr)")
        #expect(rewrap.stdout.contains("re-wrapped 5 data key(s) under system key 'new' in 3 batch(es); 0 remaining"), "\(rewrap.stdout)")
        let systemKeys = try await connection.query("SELECT DISTINCT system_key_id FROM infrastructure.encryption_keys")
        #expect(try systemKeys.map { try $0.decode(String.self, at: 0) } == ["new"])

        try FileManager.default.removeItem(atPath: "\(directory)/old.key")
        let daemon = try ProjectionistProcess.start(["run", "--config", newConfig])
        defer { daemon.signal(SIGKILL) }
        try await Self.caughtUp(newConfig, connection)
        #expect(try await Self.emails(connection) == Dictionary(uniqueKeysWithValues: (1...5).map { ("o\($0)", "buyer\($0)@example.com") }))
    }

    @Test("bad keyrings are refused at start with exit 78 naming the file, before anything runs")
    func badKeyrings() async throws {
        let setup = try await Self.setUp("enckeyring", keys: ["k1"], active: "k1")
        defer { setup.remove() }
        let (db, directory, good, connection, keyStore) = (setup.db, setup.directory, setup.config, setup.connection, setup.keyStore)
        try await Self.placeOrder("o1", customer: "c1", email: "buyer1@example.com", keyStore: keyStore, on: connection)
        let keyFile = "\(directory)/k1.key"

        func refused(_ config: String, naming expected: String, _ comment: Comment) async throws {
            let run = try await ProjectionistProcess.run(["run", "--config", config])
            #expect(run.status == 78, "\(comment): \(run.stderr)")
            #expect(run.stderr.contains(expected), "\(comment): \(run.stderr)")
            #expect(!run.stderr.contains("@example.com"), "\(comment)")
        }
        // Readable by others.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        try await refused(good, naming: keyFile, "a key file readable by others")
        // Not 32 bytes.
        let original = try String(contentsOfFile: keyFile, encoding: .utf8)
        try Self.writeKey("k1", in: directory, key: SymmetricKey(size: .bits128))
        try await refused(good, naming: keyFile, "a 16-byte key")
        // Another key under the same id: the data keys in the table do not unwrap.
        try Self.writeKey("k1", in: directory)
        try await refused(good, naming: keyFile, "a key file that is not the one that wrapped the data keys")
        // The active key's file missing.
        try original.write(toFile: keyFile, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile)
        let otherActive = Self.config(db, keys: directory, active: "k2")
        defer { TemporaryFile.remove(otherActive) }
        try await refused(otherActive, naming: "active system key 'k2'", "the active key missing")
        // The table's data keys under a system key the keyring lacks.
        try Self.writeKey("k2", in: directory)
        try FileManager.default.removeItem(atPath: keyFile)
        try await refused(otherActive, naming: keyFile, "data keys under a system key the keyring lacks")
        // decrypt: true without a keyring.
        let noKeyring = Self.config(db, keys: directory, active: "k2", encryption: false)
        defer { TemporaryFile.remove(noKeyring) }
        try await refused(noKeyring, naming: "projections[0].decrypt", "decrypt without encryption")
        // A missing key directory.
        let missing = Self.config(db, keys: "\(directory)/nowhere", active: "k2")
        defer { TemporaryFile.remove(missing) }
        try await refused(missing, naming: "\(directory)/nowhere", "a missing key directory")
    }

    @Test("an event whose ciphertext was altered is dead-lettered (on_error: skip) naming scope and version, never the value; the others apply")
    func alteredCiphertext() async throws {
        let setup = try await Self.setUp("encaltered", keys: ["k1"], active: "k1")
        defer { setup.remove() }
        let (config, connection, keyStore) = (setup.config, setup.connection, setup.keyStore)
        for index in 1...3 {
            try await Self.placeOrder("o\(index)", customer: "c\(index)", email: "buyer\(index)@example.com", keyStore: keyStore, on: connection)
        }
        // Flip a bit of o2's ciphertext (the payload is text; the ciphertext base64).
        let row = try await connection.query("SELECT payload FROM events WHERE aggregate_id = 'o2'")[0]
        var payload = try JSONSerialization.jsonObject(with: Data(try row.decode([UInt8].self, at: 0))) as! [String: Any]
        var field = payload["customer_email"] as! [String: Any]
        var body = field["$encrypted"] as! [String: Any]
        var ciphertext = Data(base64Encoded: body["ciphertext"] as! String)!
        ciphertext[ciphertext.count - 1] ^= 1
        body["ciphertext"] = ciphertext.base64EncodedString()
        field["$encrypted"] = body
        payload["customer_email"] = field
        try await connection.query(
            "UPDATE events SET payload = $1 WHERE aggregate_id = 'o2'", [Array(try JSONSerialization.data(withJSONObject: payload))])

        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await Self.caughtUp(config, connection)
        let emails = try await Self.emails(connection)
        #expect(emails["o1"] == "buyer1@example.com" && emails["o3"] == "buyer3@example.com" && emails["o2"] == nil, "\(emails)")
        let letters = try await connection.query("SELECT event_type, error FROM consumer_dead_letters")
        #expect(letters.count == 1)
        let error = try letters.first?.decode(String.self, at: 1) ?? ""
        #expect(error.contains(Self.scope) && error.contains("c2") && error.contains("does not decrypt"), "\(error)")
        #expect(!error.contains("@example.com"))
    }

    @Test("decrypt as a list maps fields of an application's own layout (base64 of the value's bytes, scope id and version in other fields); destroyed keys give null there too")
    func mappedFields() async throws {
        let db = try await TestDatabase.fresh("encmapped")
        let (directory, keys) = try Self.keyDirectory(["k1"])
        let mapping = """

                      - field: contact.email
                        scope: customer-pii
                        scope_id: $payload.customer_id
                        key_version: $payload.contact.key_version
            """
        let config = Self.config(db, keys: directory, active: "k1", decrypt: mapping)
        defer { TemporaryFile.remove(config); try? FileManager.default.removeItem(atPath: directory) }
        let yaml = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "$payload->>'customer_email'", with: "$payload->'contact'->>'email'")
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let migrate = try await ProjectionistProcess.run(["migrate", "--config", config])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        let connection = try await db.connect()
        let keyStore = KeyStore(keyring: try SystemKeyring(keys: keys, activeKeyID: "k1"))
        for (order, customer) in [("o1", "c1"), ("o2", "c2"), ("o3", "c1")] {
            try await connection.transaction { tx in
                // As a Go service using eventsalsa/encryption would: the value's bytes sealed under
                // the subject's data key, base64 in a field, the key's version beside it.
                let stored = try await keyStore.activeOrNewKey(scope: Self.scope, scopeID: customer, on: tx)
                let sealed = try Envelope.seal(Array("\(order)@example.com".utf8), using: keyStore.unwrap(stored))
                let payload = #"{"customer_id": "\#(customer)", "contact": {"email": "\#(Data(sealed).base64EncodedString())", "key_version": \#(stored.reference.version)}}"#
                _ = try await EventStore().append(
                    [Event(aggregateType: "Order", aggregateID: order, eventType: "OrderPlaced", payload: Array(payload.utf8))], expected: .noStream, in: tx)
            }
        }
        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await Self.caughtUp(config, connection)
        #expect(try await Self.emails(connection) == ["o1": "o1@example.com", "o2": "o2@example.com", "o3": "o3@example.com"])

        let destroy = try await ProjectionistProcess.run(["keys", "destroy", Self.scope, "c1", "--config", config])
        #expect(destroy.status == 0, "\(destroy.stderr)")
        #expect(try await ProjectionistProcess.run(["reset", "order_emails", "--config", config]).status == 0)
        try await eventually("the rebuild applied all 3 orders") { try await Self.emails(connection).count == 3 }
        try await Self.caughtUp(config, connection)
        #expect(try await Self.emails(connection) == ["o1": String?.none, "o2": "o2@example.com", "o3": String?.none])
        #expect(try await connection.query("SELECT count(*) FROM consumer_dead_letters")[0].decode(Int64.self, at: 0) == 0)
    }
}
