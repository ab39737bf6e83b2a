import Crypto
import Encryption
import EventStore
import Foundation
import Glibc
import Postgres
import TestSupport
import TestTraits
import Testing

/// The daemon's side of encryption: `decrypt: true`, crypto-shredding and a rebuild, re-wrapping,
/// and the keyrings refused at start. Every test drives the built executable against a real server.
@Suite(.database, .timeLimit(.minutes(3)), .serialized)
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
        TestDaemonConfig(
            db, sections: encryption ? "encryption:\n  system_keys: \(keys)\n  active_key: \(active)\n  key_cache_size: 2\n  key_cache_lifetime: 1h" : "",
            projections: """
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
            """
        ).write()
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

    @Test("decrypt: true projects the plaintext; after a rotation old and new events decrypt; a decrypted email a constraint refuses is dead-lettered without it; destroy + reset rebuilds with that customer's emails null; nothing secret in the log")
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

        // The error path: o8's decrypted email breaks a constraint (PostgreSQL's DETAIL quotes the
        // failing row); it is dead-lettered, and neither the dead letter nor the log holds it.
        try await connection.query("ALTER TABLE order_emails ADD CONSTRAINT order_emails_not_blocked CHECK (email NOT LIKE '%@blocked.example')")
        try await Self.placeOrder("o8", customer: "c9", email: "mallory@blocked.example", keyStore: keyStore, on: connection)
        let o8 = try await EventStore().latestPosition(on: connection)
        try await Self.caughtUp(config, connection)

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
        // o8, dead-lettered again by the rebuild (the reset dropped the letter from before); no other event.
        let deadLetters = try await connection.query("SELECT global_position, error FROM consumer_dead_letters")
        #expect(try deadLetters.map { try $0.decode(Int64.self, at: 0) } == [o8])
        for letter in deadLetters {
            let error = try letter.decode(String.self, at: 1)
            #expect(error.contains("order_emails_not_blocked") && error.contains("23514") && !error.contains("@blocked.example"), "\(error)")
        }

        daemon.signal(SIGTERM)
        let finished = await daemon.finish()
        #expect(finished.status == 0)
        let log = finished.stdout + finished.stderr
        #expect(!log.contains("@example.com") && !log.contains("@blocked.example"), "a decrypted value reached the log")
        #expect(log.contains("order_emails_not_blocked"), "the dead-lettering was logged, naming the constraint")
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

    @Test("bad keyrings are refused at start with exit 78 naming the file, before anything runs: no event applied, no plaintext")
    func badKeyrings() async throws {
        let setup = try await Self.setUp("enckeyring", keys: ["k1", "k2"], active: "k1")
        defer { setup.remove() }
        let (db, directory, good, connection, keyStore, keys) = (setup.db, setup.directory, setup.config, setup.connection, setup.keyStore, setup.keys)
        // o1's data key under k1, o2's under k2: a daemon that started anyway would decrypt at
        // least o2 in every case below but the last two, and project its email.
        try await Self.placeOrder("o1", customer: "c1", email: "buyer1@example.com", keyStore: keyStore, on: connection)
        let underK2 = KeyStore(keyring: try SystemKeyring(keys: keys, activeKeyID: "k2"))
        try await Self.placeOrder("o2", customer: "c2", email: "buyer2@example.com", keyStore: underK2, on: connection)
        let keyFile = "\(directory)/k1.key"

        func refused(_ config: String, naming expected: String, _ comment: Comment) async throws {
            let daemon = try ProjectionistProcess.start(["run", "--config", config])
            let exited = try await poll(timeout: .seconds(20), every: .milliseconds(50)) { !daemon.process.isRunning }
            if !exited { daemon.signal(SIGKILL) }
            let run = await daemon.finish()
            #expect(exited && run.status == 78, "\(comment): \(run.stderr)")
            #expect(run.stderr.contains(expected), "\(comment): \(run.stderr)")
            #expect(!(run.stdout + run.stderr).contains("@example.com"), "\(comment)")
            let applied = try await connection.query("SELECT count(*) FROM order_emails")[0].decode(Int64.self, at: 0)
            #expect(applied == 0, "\(comment): an event was applied before the refusal")
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
        let otherActive = Self.config(db, keys: directory, active: "k3")
        defer { TemporaryFile.remove(otherActive) }
        try await refused(otherActive, naming: "active system key 'k3'", "the active key missing")
        // The table's data keys under a system key the keyring lacks (o2's k2 is there).
        let activeK2 = Self.config(db, keys: directory, active: "k2")
        defer { TemporaryFile.remove(activeK2) }
        try FileManager.default.removeItem(atPath: keyFile)
        try await refused(activeK2, naming: keyFile, "data keys under a system key the keyring lacks")
        // decrypt: true without a keyring.
        let noKeyring = Self.config(db, keys: directory, active: "k2", encryption: false)
        defer { TemporaryFile.remove(noKeyring) }
        try await refused(noKeyring, naming: "projections[0].decrypt", "decrypt without encryption")
        // A missing key directory.
        let missing = Self.config(db, keys: "\(directory)/nowhere", active: "k2")
        defer { TemporaryFile.remove(missing) }
        try await refused(missing, naming: "\(directory)/nowhere", "a missing key directory")
    }

    @Test("an event whose ciphertext was altered is dead-lettered (on_error: skip) naming scope and version, never a value (not even its other field, which decrypted); the others apply")
    func alteredCiphertext() async throws {
        let setup = try await Self.setUp("encaltered", keys: ["k1"], active: "k1")
        defer { setup.remove() }
        let (config, connection, keyStore) = (setup.config, setup.connection, setup.keyStore)
        try await Self.placeOrder("o1", customer: "c1", email: "buyer1@example.com", keyStore: keyStore, on: connection)
        // o2: a name that decrypts, then an email whose ciphertext has a bit flipped. Decryption
        // opens the name before it fails on the email: that plaintext exists in the daemon, and
        // must reach neither the dead letter nor the log.
        try await connection.transaction { tx in
            let encryptor = FieldEncryptor(keyStore: keyStore)
            let name = try await encryptor.encrypt("Secret Name Two", scope: Self.scope, scopeID: "c2", on: tx)
            var email = try await encryptor.encrypt("buyer2@example.com", scope: Self.scope, scopeID: "c2", on: tx)
            email.ciphertext[email.ciphertext.count - 1] ^= 1
            let payload = #"{"customer_id": "c2", "customer_name": \#(String(decoding: name.jsonBytes, as: UTF8.self)), "customer_email": \#(String(decoding: email.jsonBytes, as: UTF8.self))}"#
            _ = try await EventStore().append(
                [Event(aggregateType: "Order", aggregateID: "o2", eventType: "OrderPlaced", payload: Array(payload.utf8))], expected: .noStream, in: tx)
        }
        try await Self.placeOrder("o3", customer: "c3", email: "buyer3@example.com", keyStore: keyStore, on: connection)

        let daemon = try ProjectionistProcess.start(["run", "--config", config])
        defer { daemon.signal(SIGKILL) }
        try await Self.caughtUp(config, connection)
        let emails = try await Self.emails(connection)
        #expect(emails["o1"] == "buyer1@example.com" && emails["o3"] == "buyer3@example.com" && emails["o2"] == nil, "\(emails)")
        let letters = try await connection.query("SELECT event_type, error FROM consumer_dead_letters")
        #expect(letters.count == 1)
        let error = try letters.first?.decode(String.self, at: 1) ?? ""
        #expect(error.contains(Self.scope) && error.contains("c2") && error.contains("does not decrypt"), "\(error)")
        daemon.signal(SIGTERM)
        let log = await daemon.finish()
        for (place, text) in [("the dead letter", error), ("the log", log.stdout + log.stderr)] {
            #expect(!text.contains("Secret Name") && !text.contains("@example.com"), "\(place) quotes a decrypted value: \(text)")
        }
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
