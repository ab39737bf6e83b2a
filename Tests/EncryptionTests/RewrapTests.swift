import Crypto
import Encryption
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(2))) struct RewrapTests {
    @Test("rewrap to a new active system key: dry run counts, batches, then all decrypts with the old key gone; events untouched")
    func rewrapToNewSystemKey() async throws {
        let (_, connection) = try await Fixtures.database()
        let (oldKeyring, keys) = try Fixtures.keyring(["2024"], active: "2024")
        let oldStore = KeyStore(keyring: oldKeyring)
        let encryptor = FieldEncryptor(keyStore: oldStore)
        try await connection.query("CREATE TABLE events (id INT PRIMARY KEY, payload BYTEA NOT NULL)", [])
        var expected: [Int: String] = [:]
        for subject in 0..<8 {
            for version in 1...(subject % 3 + 1) {  // 1 to 3 versions per subject: 15 data keys
                if version > 1 { try await oldStore.rotateKey(scope: "user-pii", scopeID: "u\(subject)", on: connection) }
                let id = subject * 10 + version
                let field = try await encryptor.encrypt("secret \(id)", scope: "user-pii", scopeID: "u\(subject)", on: connection)
                try await connection.query("INSERT INTO events VALUES ($1, $2)", [Int32(id), Array("{\"v\":\(field.jsonBytes.text)}".utf8)])
                expected[id] = "{\"v\":\"secret \(id)\"}"
            }
        }
        let events = try await connection.query("SELECT md5(string_agg(payload, '' ORDER BY id)) FROM events", [])
        let eventsDigest = try events[0].decode(String.self, at: 0)

        // The new key becomes active beside the old one.
        let newKey = SymmetricKey(size: .bits256)
        let both = try SystemKeyring(keys: ["2024": keys["2024"]!, "2025": newKey], activeKeyID: "2025")
        let store = KeyStore(keyring: both)
        let dryRun = try await store.rewrap(RewrapOptions(dryRun: true), on: connection)
        #expect(dryRun.matchedRows == 15 && dryRun.remainingRows == 15 && dryRun.rewrappedRows == 0 && dryRun.batches == 0)
        #expect(try await store.countToRewrap(on: connection) == 15)

        // Before the rewrap, a keyring without the old key cannot decrypt.
        let onlyNew = try SystemKeyring(keys: ["2025": newKey], activeKeyID: "2025")
        let payloads = try await connection.query("SELECT id, payload FROM events ORDER BY id", [])
        let rows = try payloads.map { (try $0.decode(Int.self, at: 0), try $0.decode([UInt8].self, at: 1)) }
        await #expect(throws: EncryptionError.self) {
            try await PayloadDecryptor(keyStore: KeyStore(keyring: onlyNew)).decrypt(rows[0].1, on: connection)
        }

        let result = try await store.rewrap(RewrapOptions(batchSize: 4), on: connection)
        #expect(result.matchedRows == 15 && result.rewrappedRows == 15 && result.skippedRows == 0)
        #expect(result.remainingRows == 0 && result.batches == 4)
        let systemKeys = try await connection.query(
            "SELECT string_agg(DISTINCT system_key_id, ','), count(*) FILTER (WHERE revoked_at IS NOT NULL) FROM infrastructure.encryption_keys", [])
        #expect(try systemKeys[0].decode(String.self, at: 0) == "2025")
        #expect(try systemKeys[0].decode(Int.self, at: 1) == 7)  // versions and revocations as they were
        #expect(try await store.rewrap(on: connection).matchedRows == 0)

        // Every event decrypts with the old key removed; the event bytes did not change.
        let decryptor = PayloadDecryptor(keyStore: KeyStore(keyring: onlyNew))
        let decrypted = try await decryptor.decrypt(rows.map(\.1), on: connection)
        for ((id, _), payload) in zip(rows, decrypted) { #expect(payload.bytes.text == expected[id]) }
        let after = try await connection.query("SELECT md5(string_agg(payload, '' ORDER BY id)) FROM events", [])
        #expect(try after[0].decode(String.self, at: 0) == eventsDigest)
    }

    @Test("rewrap from one system key only; one batch inside the caller's transaction; bad options")
    func selectiveAndOptions() async throws {
        let (_, connection) = try await Fixtures.database()
        let (keyring, keys) = try Fixtures.keyring(["a", "b", "c"], active: "a")
        try await KeyStore(keyring: keyring).createKey(scope: "s", scopeID: "1", on: connection)
        try await KeyStore(keyring: SystemKeyring(keys: keys, activeKeyID: "b")).createKey(scope: "s", scopeID: "2", on: connection)
        try await KeyStore(keyring: SystemKeyring(keys: keys, activeKeyID: "b")).createKey(scope: "s", scopeID: "3", on: connection)
        let store = KeyStore(keyring: try SystemKeyring(keys: keys, activeKeyID: "c"))
        #expect(try await store.countToRewrap(on: connection) == 3)
        #expect(try await store.countToRewrap(from: "b", on: connection) == 2)

        let batch = try await connection.transaction { transaction in
            try await store.rewrapBatch(from: "b", batchSize: 1, on: transaction)
        }
        #expect(batch.matchedRows == 1 && batch.rewrappedRows == 1 && batch.batches == 1)
        let rest = try await store.rewrap(RewrapOptions(fromSystemKeyID: "b"), on: connection)
        #expect(rest.rewrappedRows == 1 && rest.remainingRows == 0 && rest.batches == 1)
        #expect(try await store.countToRewrap(on: connection) == 1)  // the one under "a"

        for options in [RewrapOptions(batchSize: 0), RewrapOptions(fromSystemKeyID: "c")] {
            do {
                _ = try await store.rewrap(options, on: connection)
                Issue.record("\(options) must be refused")
            } catch let error as EncryptionError {
                #expect(error.code == .invalidArgument)
            }
        }
    }
}
