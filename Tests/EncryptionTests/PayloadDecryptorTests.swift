import Crypto
import Encryption
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(2))) struct PayloadDecryptorTests {
    struct Setup {
        let connection: PostgresConnection
        let keyring: SystemKeyring
        let keys: [String: SymmetricKey]
        var store: KeyStore { KeyStore(keyring: self.keyring) }
        var encryptor: FieldEncryptor { FieldEncryptor(keyStore: self.store) }

        func encrypt(_ json: String, _ scopeID: String, scope: String = "user-pii") async throws -> String {
            try await self.encryptor.encrypt(json: Array(json.utf8), scope: scope, scopeID: scopeID, on: self.connection).jsonBytes.text
        }
    }

    func setup() async throws -> Setup {
        let (_, connection) = try await Fixtures.database()
        let (keyring, keys) = try Fixtures.keyring(["k1"], active: "k1")
        return Setup(connection: connection, keyring: keyring, keys: keys)
    }

    @Test("every kind of JSON value at any depth comes back as its exact text; every other byte stays")
    func roundTrip() async throws {
        let setup = try await self.setup()
        let values = [
            "\"alice@example.com\"", "12.50", "-1e3", "true", "null", "[1, \"two\", {\"three\": 3}]",
            "{\"street\": \"Rue de l'Église 5\", \"zip\": \"1000\"}", "\"quote \\\" and \\u00e9\"",
        ]
        var encrypted: [String] = []
        for (index, value) in values.enumerated() {
            // Subject ids with quotes, backslashes and array punctuation go through the batched key query.
            encrypted.append(try await setup.encrypt(value, "user \"\(index % 3)\" \\{,}"))
        }
        func payload(_ parts: [String]) -> String {
            """
            { "id" : 7,"first":\(parts[0]), "nested": {"deeper": [ \(parts[1]), {"x": \(parts[2])}, \(parts[3]) ]},
              "more": [\(parts[4]),\(parts[5])], "address":\(parts[6]), "escaped": \(parts[7]), "tail": "$encrypted is just text here" }
            """
        }
        let decryptor = PayloadDecryptor(keyStore: setup.store)
        let result = try await decryptor.decrypt(Array(payload(encrypted).utf8), on: setup.connection)
        #expect(result.bytes.text == payload(values))
        #expect(result.decryptedFieldCount == values.count && result.nulledFields.isEmpty)
        // The whole payload may itself be an encrypted field.
        #expect(try await decryptor.decrypt(Array(encrypted[6].utf8), on: setup.connection).bytes.text == values[6])
    }

    @Test("a payload without $encrypted comes back unchanged, without parsing and without the database")
    func untouched() async throws {
        let setup = try await self.setup()
        let decryptor = PayloadDecryptor(keyStore: setup.store)
        let closed = try await Fixtures.database().1
        await closed.close()
        for payload in ["{\"a\": 1, \"b\": [true, null]}", "not json at all {", "", "{\"encrypted\": \"$ encrypted\"}"] {
            let bytes = Array(payload.utf8)
            #expect(!PayloadDecryptor.mayContainEncryptedFields(bytes))
            let result = try await decryptor.decrypt(bytes, on: closed)
            #expect(result.bytes == bytes && result.decryptedFieldCount == 0 && result.nulledFields.isEmpty)
        }
    }

    @Test("after destroy, the subject's fields become null and are reported; others still decrypt")
    func destroyedKeysGiveNull() async throws {
        let setup = try await self.setup()
        let email = try await setup.encrypt("\"alice@example.com\"", "alice")
        let oldPhone = try await setup.encrypt("\"+41 00 000 00 00\"", "alice")
        try await setup.store.rotateKey(scope: "user-pii", scopeID: "alice", on: setup.connection)
        let phone = try await setup.encrypt("\"+41 11 111 11 11\"", "alice")
        let other = try await setup.encrypt("\"bob@example.com\"", "bob")
        let payload = Array("{\"email\":\(email),\"phones\":[\(oldPhone),\(phone)],\"a/b~c\":{\"friend\":\(other)}}".utf8)
        let cache = KeyCache()
        let decryptor = PayloadDecryptor(keyStore: setup.store, cache: cache)
        #expect(try await decryptor.decrypt(payload, on: setup.connection).decryptedFieldCount == 4)

        #expect(try await setup.store.destroyKeys(scope: "user-pii", scopeID: "alice", on: setup.connection, cache: cache) == 2)
        let result = try await decryptor.decrypt(payload, on: setup.connection)
        #expect(result.bytes.text == "{\"email\":null,\"phones\":[null,null],\"a/b~c\":{\"friend\":\"bob@example.com\"}}")
        #expect(result.decryptedFieldCount == 1)
        #expect(
            result.nulledFields == [
                NulledField(path: "/email", key: KeyReference(scope: "user-pii", scopeID: "alice", version: 1)),
                NulledField(path: "/phones/0", key: KeyReference(scope: "user-pii", scopeID: "alice", version: 1)),
                NulledField(path: "/phones/1", key: KeyReference(scope: "user-pii", scopeID: "alice", version: 2)),
            ])
        // The nested path is a JSON Pointer: '/' and '~' in names are escaped.
        try await setup.store.destroyKeys(scope: "user-pii", scopeID: "bob", on: setup.connection, cache: cache)
        #expect(try await decryptor.decrypt(payload, on: setup.connection).nulledFields.last?.path == "/a~1b~0c/friend")
    }

    @Test("a catch-up batch reads the keys it lacks in one query, then none until entries expire")
    func cacheSavesQueries() async throws {
        let setup = try await self.setup()
        var payloads: [[UInt8]] = []
        for event in 0..<40 {
            let field = try await setup.encrypt("\"event \(event)\"", "user-\(event % 5)")
            payloads.append(Array("{\"n\":\(event),\"secret\":\(field)}".utf8))
        }
        let clock = ManualClock()
        let cache = KeyCache(KeyCache.Configuration(maximumEntries: 100, entryLifetime: .seconds(30)), now: { clock.now })
        let decryptor = PayloadDecryptor(keyStore: setup.store, cache: cache)
        let counting = CountingDatabase(setup.connection)
        let first = try await decryptor.decrypt(payloads, on: counting)
        #expect(counting.queries == 1 && cache.count == 5)
        #expect(first.enumerated().allSatisfy { $1.bytes.text == "{\"n\":\($0),\"secret\":\"event \($0)\"}" })
        for payload in payloads { _ = try await decryptor.decrypt(payload, on: counting) }
        #expect(counting.queries == 1)

        // Destroyed elsewhere (not through this cache): still served from the cache until the entry expires.
        try await setup.connection.query("DELETE FROM infrastructure.encryption_keys WHERE scope_id = 'user-0'", [])
        #expect(try await decryptor.decrypt(payloads[0], on: counting).nulledFields.isEmpty)
        clock.advance(.seconds(30))
        #expect(try await decryptor.decrypt(payloads[0], on: counting).nulledFields.count == 1)
        #expect(counting.queries == 2)
    }

    @Test("altered ciphertext: an error naming scope, scope_id and version, and no value or key")
    func tampered() async throws {
        let setup = try await self.setup()
        let field = try await setup.encryptor.encrypt(json: Array("\"alice@example.com\"".utf8), scope: "user-pii", scopeID: "alice", on: setup.connection)
        var altered = field
        altered.ciphertext[20] ^= 0x01
        let decryptor = PayloadDecryptor(keyStore: setup.store)
        do {
            _ = try await decryptor.decrypt(Array("{\"email\":\(altered.jsonBytes.text)}".utf8), on: setup.connection)
            Issue.record("altered ciphertext must not decrypt")
        } catch let error as EncryptionError {
            #expect(error.code == .decryptionFailed)
            #expect(error.scope == "user-pii" && error.scopeID == "alice" && error.keyVersion == 1)
            let text = error.description
            #expect(text.contains("/email") && text.contains("user-pii") && text.contains("alice") && text.contains("version 1"))
            let stored = try #require(try await setup.store.activeKey(scope: "user-pii", scopeID: "alice", on: setup.connection))
            for secret in [
                "alice@example.com", Fixtures.base64(try setup.store.unwrap(stored)), Fixtures.base64(setup.keys["k1"]!),
                Data(altered.ciphertext).base64EncodedString(), Data(stored.encryptedKey).base64EncodedString(),
            ] {
                #expect(!text.contains(secret))
            }
        }
    }

    @Test("a data key under a system key the keyring lacks: an error naming it, and no key")
    func unknownSystemKey() async throws {
        let setup = try await self.setup()
        let field = try await setup.encrypt("42", "alice")
        let (otherKeyring, otherKeys) = try Fixtures.keyring(["k2"], active: "k2")
        do {
            _ = try await PayloadDecryptor(keyStore: KeyStore(keyring: otherKeyring)).decrypt(Array(field.utf8), on: setup.connection)
            Issue.record("a missing system key must fail")
        } catch let error as EncryptionError {
            #expect(error.code == .unknownSystemKey && error.systemKeyID == "k1" && error.scopeID == "alice")
            #expect(error.description.contains("k1.key") && error.description.contains("alice"))
            #expect(!error.description.contains(Fixtures.base64(otherKeys["k2"]!)))
            #expect(!error.description.contains(Fixtures.base64(setup.keys["k1"]!)))
        }
        // The same with a key file of that id holding other bytes: the wrapped key does not authenticate.
        let (impostor, _) = try Fixtures.keyring(["k1"], active: "k1")
        await #expect(throws: EncryptionError.self) {
            try await PayloadDecryptor(keyStore: KeyStore(keyring: impostor)).decrypt(Array(field.utf8), on: setup.connection)
        }
    }

    @Test("malformed: $encrypted beside other members, a body without ciphertext, bad base64, not JSON")
    func malformed() async throws {
        let setup = try await self.setup()
        let decryptor = PayloadDecryptor(keyStore: setup.store)
        let cases: [(String, EncryptionError.Code)] = [
            ("{\"f\":{\"$encrypted\":{\"scope\":\"s\",\"scope_id\":\"i\",\"key_version\":1,\"ciphertext\":\"AAAA\"},\"x\":1}}", .malformedField),
            ("{\"f\":{\"$encrypted\":{\"scope\":\"s\",\"scope_id\":\"i\",\"key_version\":1}}}", .malformedField),
            ("{\"f\":{\"$encrypted\":{\"scope\":\"s\",\"scope_id\":\"i\",\"key_version\":0,\"ciphertext\":\"\(Fixtures.randomBase64(40))\"}}}", .malformedField),
            ("{\"f\":{\"$encrypted\":{\"scope\":\"s\",\"scope_id\":\"i\\u0000x\",\"key_version\":1,\"ciphertext\":\"\(Fixtures.randomBase64(40))\"}}}", .malformedField),
            ("{\"f\":{\"$encrypted\":{\"scope\":\"s\\u0000\",\"scope_id\":\"i\",\"key_version\":1,\"ciphertext\":\"\(Fixtures.randomBase64(40))\"}}}", .malformedField),
            ("{\"f\":{\"$encrypted\":{\"scope\":\"s\",\"scope_id\":\"i\",\"key_version\":3000000000,\"ciphertext\":\"\(Fixtures.randomBase64(40))\"}}}", .malformedField),
            ("{\"f\":{\"$encrypted\":{\"scope\":\"s\",\"scope_id\":\"i\",\"key_version\":1,\"ciphertext\":\"%%%\"}}}", .malformedField),
            ("{\"f\":{\"$encrypted\": ", .invalidJSON),
            ("[\"$encrypted\", 01]", .invalidJSON),
            (String(repeating: "[", count: 600) + "\"$encrypted\"" + String(repeating: "]", count: 600), .invalidJSON),
        ]
        for (payload, code) in cases {
            do {
                _ = try await decryptor.decrypt(Array(payload.utf8), on: setup.connection)
                Issue.record("\(payload) must fail")
            } catch let error as EncryptionError {
                #expect(error.code == code, "\(payload): \(error)")
            }
        }
    }

    @Test("nesting up to the depth limit is fine")
    func deepNesting() async throws {
        let setup = try await self.setup()
        let field = try await setup.encrypt("\"deep\"", "alice")
        let depth = 500
        let payload = String(repeating: "[", count: depth) + field + String(repeating: "]", count: depth)
        let result = try await PayloadDecryptor(keyStore: setup.store).decrypt(Array(payload.utf8), on: setup.connection)
        #expect(result.bytes.text == String(repeating: "[", count: depth) + "\"deep\"" + String(repeating: "]", count: depth))
    }

    @Test("EncryptedField is Encodable: a property of an event's payload type, whatever the encoder's options")
    func encodable() async throws {
        struct UserRegistered: Codable {
            var userID: String
            var email: EncryptedField
        }
        let setup = try await self.setup()
        let email = try await setup.encryptor.encrypt("alice@example.com", scope: "user-pii", scopeID: "alice", on: setup.connection)
        let payload = try JSONEncoder().encode(UserRegistered(userID: "alice", email: email))
        let result = try await PayloadDecryptor(keyStore: setup.store).decrypt(Array(payload), on: setup.connection)
        let decoded = try JSONSerialization.jsonObject(with: Data(result.bytes)) as? [String: String]
        #expect(decoded == ["userID": "alice", "email": "alice@example.com"])
        #expect(try JSONDecoder().decode(UserRegistered.self, from: payload).email == email)
        #expect(
            email.jsonBytes.text.hasPrefix("{\"$encrypted\":{\"scope\":\"user-pii\",\"scope_id\":\"alice\",\"key_version\":1,\"ciphertext\":\""))
    }

    @Test("Python: it decrypts what Swift encrypted (key table and field), and Swift decrypts what it encrypted")
    func pythonInterop() async throws {
        let setup = try await self.setup()
        let systemKey = Fixtures.base64(setup.keys["k1"]!)
        // Swift → Python: unwrap the stored data key with the system key, then open the field.
        let field = try await setup.encryptor.encrypt(json: Array("{\"zip\":\"1000\"}".utf8), scope: "user-pii", scopeID: "alice", on: setup.connection)
        let stored = try #require(try await setup.store.key(field.key, on: setup.connection))
        let dataKey = try await Fixtures.python("open", systemKey, Data(stored.encryptedKey).base64EncodedString())
        let plaintext = try await Fixtures.python("open", dataKey, Data(field.ciphertext).base64EncodedString())
        #expect(Data(base64Encoded: plaintext).map { String(decoding: $0, as: UTF8.self) } == "{\"zip\":\"1000\"}")

        // Python → Swift: a data key made and wrapped by Python, stored as a Go or Python writer would, and a field sealed by Python.
        let pythonDataKey = try await Fixtures.python("newkey")
        let wrapped = try await Fixtures.python("seal", systemKey, pythonDataKey)
        try await setup.connection.query(
            "INSERT INTO infrastructure.encryption_keys (scope, scope_id, key_version, encrypted_key, system_key_id) VALUES ('user-pii', 'carol', 1, $1, 'k1')",
            [Array(Data(base64Encoded: wrapped)!)])
        let sealed = try await Fixtures.python("seal", pythonDataKey, Data("\"carol@example.com\"".utf8).base64EncodedString())
        let payload = "{\"email\":{\"$encrypted\":{\"scope\":\"user-pii\",\"scope_id\":\"carol\",\"key_version\":1,\"ciphertext\":\"\(sealed)\"}}}"
        let result = try await PayloadDecryptor(keyStore: setup.store).decrypt(Array(payload.utf8), on: setup.connection)
        #expect(result.bytes.text == "{\"email\":\"carol@example.com\"}")
    }
}
