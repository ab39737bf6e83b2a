import Crypto
import Encryption
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(2))) struct KeyStoreTests {
    @Test("the migration applies twice (psql), with eventsalsa's columns, checks and indexes", arguments: [
        KeyStore.defaultTable, QualifiedName(schema: "Crypto Keys", name: "subject_keys"), QualifiedName(name: "keys"),
    ])
    func migration(table: QualifiedName) async throws {
        let database = try await TestDatabase.fresh("encryption_migration")
        let file = TemporaryFile.write(KeyStore.migrationSQL(table: table), name: "keys-\(UUID()).sql")
        defer { TemporaryFile.remove(file) }
        for _ in 0..<2 {
            let run = try await Shell.run(["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-q", "-d", database.connectionString, "-f", file])
            #expect(run.status == 0, "psql failed: \(run.output)")
        }
        let connection = try await database.connect()
        defer { Task { await connection.close() } }
        let regclass = table.regclassLiteral
        let columns = try await connection.query(
            """
            SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum)
            FROM pg_attribute WHERE attrelid = \(regclass)::regclass AND attnum > 0 AND NOT attisdropped
            """, [])
        #expect(
            try columns[0].decode(String.self, at: 0)
                == "scope text not null, scope_id text not null, key_version integer not null, encrypted_key bytea not null, "
                + "system_key_id text not null, created_at timestamp with time zone not null, revoked_at timestamp with time zone")
        let constraints = try await connection.query(
            "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = \(regclass)::regclass AND contype = 'c'", [])
        #expect(
            try constraints[0].decode(String.self, at: 0)
                == "encrypted_key_not_empty,key_version_positive,scope_id_not_empty,scope_not_empty,system_key_id_not_empty")
        let indexes = try await connection.query(
            "SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
            [table.schema ?? "public", table.name])
        let definitions = try indexes[0].decode(String.self, at: 0)
        #expect(definitions.contains("idx_\(table.name)_active") && definitions.contains("WHERE (revoked_at IS NULL)"))
        #expect(definitions.contains("idx_\(table.name)_scope") && definitions.contains("key_version DESC"))
        #expect(definitions.contains("idx_\(table.name)_system_key_id"))
        let primaryKey = try await connection.query(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = \(regclass)::regclass AND contype = 'p'", [])
        #expect(try primaryKey[0].decode(String.self, at: 0) == "PRIMARY KEY (scope, scope_id, key_version)")
    }

    @Test("create (version 1, under the active system key), a second create is refused, rotate, revoke")
    func lifecycle() async throws {
        let (_, connection) = try await Fixtures.database()
        let (keyring, _) = try Fixtures.keyring(["k1"], active: "k1")
        let store = KeyStore(keyring: keyring)
        #expect(try await store.activeKey(scope: "user-pii", scopeID: "u1", on: connection) == nil)
        #expect(try await store.createKey(scope: "user-pii", scopeID: "u1", on: connection) == 1)
        let first = try #require(try await store.activeKey(scope: "user-pii", scopeID: "u1", on: connection))
        #expect(first.reference == KeyReference(scope: "user-pii", scopeID: "u1", version: 1))
        #expect(first.systemKeyID == "k1" && first.encryptedKey.count == 60 && first.revokedAt == nil)
        await #expect(throws: EncryptionError.self) { try await store.createKey(scope: "user-pii", scopeID: "u1", on: connection) }

        #expect(try await store.rotateKey(scope: "user-pii", scopeID: "u1", on: connection) == 2)
        #expect(try await store.rotateKey(scope: "user-pii", scopeID: "u1", on: connection) == 3)
        let active = try #require(try await store.activeKey(scope: "user-pii", scopeID: "u1", on: connection))
        #expect(active.reference.version == 3 && active.revokedAt == nil)
        for version in [1, 2] {
            let old = try #require(try await store.key(KeyReference(scope: "user-pii", scopeID: "u1", version: version), on: connection))
            #expect(old.revokedAt != nil)
            #expect(Fixtures.base64(try store.unwrap(old)) != Fixtures.base64(try store.unwrap(active)))
        }
        #expect(try await store.revokeKeys(scope: "user-pii", scopeID: "u1", on: connection) == 0)
        // Rotating a subject without a key is refused.
        do {
            try await store.rotateKey(scope: "user-pii", scopeID: "nobody", on: connection)
            Issue.record("rotating without a key must fail")
        } catch let error as EncryptionError {
            #expect(error.code == .keyNotFound && error.description.contains("nobody"))
        }
    }

    @Test("operations belong to the caller's transaction: a rollback leaves no key")
    func transactional() async throws {
        let (_, connection) = try await Fixtures.database()
        let (keyring, _) = try Fixtures.keyring(["k1"], active: "k1")
        let store = KeyStore(keyring: keyring)
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await connection.transaction { transaction in
                try await store.createKey(scope: "user-pii", scopeID: "u1", on: transaction)
                #expect(try await store.activeKey(scope: "user-pii", scopeID: "u1", on: transaction) != nil)
                throw Abort()
            }
        }
        #expect(try await store.activeKey(scope: "user-pii", scopeID: "u1", on: connection) == nil)
    }

    @Test("destroy deletes every version: lookups give nil")
    func destroy() async throws {
        let (_, connection) = try await Fixtures.database()
        let (keyring, _) = try Fixtures.keyring(["k1"], active: "k1")
        let store = KeyStore(keyring: keyring)
        try await store.createKey(scope: "user-pii", scopeID: "u1", on: connection)
        try await store.rotateKey(scope: "user-pii", scopeID: "u1", on: connection)
        try await store.createKey(scope: "user-pii", scopeID: "u2", on: connection)
        #expect(try await store.destroyKeys(scope: "user-pii", scopeID: "u1", on: connection) == 2)
        #expect(try await store.activeKey(scope: "user-pii", scopeID: "u1", on: connection) == nil)
        #expect(try await store.key(KeyReference(scope: "user-pii", scopeID: "u1", version: 1), on: connection) == nil)
        #expect(try await store.activeKey(scope: "user-pii", scopeID: "u2", on: connection) != nil)
    }

    @Test("writers encrypting for the same new subject at once share one version-1 key")
    func concurrentFirstEncryption() async throws {
        let (database, connection) = try await Fixtures.database()
        let (keyring, _) = try Fixtures.keyring(["k1"], active: "k1")
        let encryptor = FieldEncryptor(keyStore: KeyStore(keyring: keyring))
        let fields = try await withThrowingTaskGroup(of: EncryptedField.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    let own = try await database.connect()
                    defer { Task { await own.close() } }
                    return try await own.transaction { transaction in
                        let field = try await encryptor.encrypt("writer \(writer)", scope: "user-pii", scopeID: "new", on: transaction)
                        try await transaction.query("SELECT pg_sleep(0.05)")
                        return field
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let count = try await connection.query("SELECT count(*) FROM infrastructure.encryption_keys", [])
        #expect(try count[0].decode(Int.self, at: 0) == 1)
        let decryptor = PayloadDecryptor(keyStore: KeyStore(keyring: keyring))
        for field in fields {
            #expect(try await decryptor.decrypt(field.jsonBytes, on: connection).bytes.text.hasPrefix("\"writer "))
        }
    }
}
