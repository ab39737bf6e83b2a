import Crypto
import Foundation
import Postgres

/// The data keys (DEKs) of subjects in eventsalsa/encryption's key table, wrapped under the
/// keyring's system keys. Stateless: every operation runs on the connection or transaction it
/// is given, so key changes commit or roll back with the caller's own writes.
///
/// Version rules (eventsalsa's): a subject's active key is its highest version not revoked;
/// `rotateKey` adds version active+1 and revokes every lower version; revoked versions still
/// decrypt; `destroyKeys` deletes every version (crypto-shredding).
public struct KeyStore: Sendable {
    /// eventsalsa's default: `infrastructure.encryption_keys`.
    public static let defaultTable = QualifiedName(schema: "infrastructure", name: "encryption_keys")

    /// Wraps new data keys (active key) and unwraps stored ones (any key it has).
    public let keyring: SystemKeyring
    /// The key table.
    public let table: QualifiedName

    /// A store over `table` (eventsalsa's default unless given), using `keyring`.
    public init(keyring: SystemKeyring, table: QualifiedName = KeyStore.defaultTable) {
        self.keyring = keyring
        self.table = table
    }

    static let columns = "scope, scope_id, key_version, encrypted_key, system_key_id, created_at, revoked_at"

    /// Creates the subject's first data key (version 1), wrapped under the active system key.
    /// - Throws: `EncryptionError.keyExists` when the subject already has an active key.
    /// - Returns: the version created (1).
    @discardableResult
    public func createKey(scope: String, scopeID: String, on database: some PostgresQuerying) async throws -> Int {
        if try await self.activeKey(scope: scope, scopeID: scopeID, on: database) != nil {
            throw EncryptionError(
                .keyExists, "scope '\(scope)', scope_id '\(scopeID)' already has an active key: rotate it instead",
                scope: scope, scopeID: scopeID)
        }
        try await self.insertNewKey(KeyReference(scope: scope, scopeID: scopeID, version: 1), on: database)
        return 1
    }

    /// Adds a new version (active + 1) under the active system key and revokes the older ones.
    /// - Throws: `EncryptionError.keyNotFound` when the subject has no active key.
    /// - Returns: the new version.
    @discardableResult
    public func rotateKey(scope: String, scopeID: String, on database: some PostgresQuerying) async throws -> Int {
        guard let current = try await self.activeKey(scope: scope, scopeID: scopeID, on: database) else {
            throw EncryptionError(
                .keyNotFound, "scope '\(scope)', scope_id '\(scopeID)' has no active key to rotate: create one first",
                scope: scope, scopeID: scopeID)
        }
        let next = current.reference.version + 1
        try await self.insertNewKey(KeyReference(scope: scope, scopeID: scopeID, version: next), on: database)
        try await self.revokeKeys(scope: scope, scopeID: scopeID, on: database)
        return next
    }

    /// Revokes every version but the highest (which stays active); revoked ones still decrypt.
    /// - Returns: the number of versions revoked.
    @discardableResult
    public func revokeKeys(scope: String, scopeID: String, on database: some PostgresQuerying) async throws -> Int {
        let result = try await database.query(
            """
            UPDATE \(self.table.quoted) SET revoked_at = now()
            WHERE scope = $1 AND scope_id = $2 AND revoked_at IS NULL
              AND key_version < (SELECT max(key_version) FROM \(self.table.quoted) WHERE scope = $1 AND scope_id = $2)
            """, [scope, scopeID])
        return result.affectedRows
    }

    /// Deletes every version of the subject's key (crypto-shredding): what they encrypted can
    /// never be decrypted again, and decryption yields JSON `null` for it. Processes that cached
    /// the key keep it until the cache entry expires (`KeyCache.Configuration.entryLifetime`);
    /// pass this process's `cache` to drop it here at once.
    /// - Returns: the number of versions deleted.
    @discardableResult
    public func destroyKeys(
        scope: String, scopeID: String, on database: some PostgresQuerying, cache: KeyCache? = nil
    ) async throws -> Int {
        let result = try await database.query(
            "DELETE FROM \(self.table.quoted) WHERE scope = $1 AND scope_id = $2", [scope, scopeID])
        cache?.remove(scope: scope, scopeID: scopeID)
        return result.affectedRows
    }

    /// How many versions of the subject's data key the table holds (revoked ones included).
    public func versionCount(scope: String, scopeID: String, on database: some PostgresQuerying) async throws -> Int {
        let rows = try await database.query(
            "SELECT count(*) FROM \(self.table.quoted) WHERE scope = $1 AND scope_id = $2", [scope, scopeID])
        return Int(try rows[0].decode(Int64.self, at: 0))
    }

    /// The plaintext data key of a stored key, unwrapped with the keyring.
    /// - Throws: `EncryptionError.unknownSystemKey` when the keyring lacks its system key,
    ///   `.decryptionFailed` when the wrapped key does not authenticate.
    public func unwrap(_ stored: StoredKey) throws -> SymmetricKey {
        guard let systemKey = self.keyring.key(stored.systemKeyID) else {
            throw EncryptionError(
                .unknownSystemKey,
                "the data key of \(stored.reference.label) is wrapped under system key '\(stored.systemKeyID)', "
                    + "which the keyring does not have (it has \(self.keyring.keyIDs.joined(separator: ", "))): "
                    + "add \(stored.systemKeyID).key to the keyring",
                scope: stored.reference.scope, scopeID: stored.reference.scopeID, keyVersion: stored.reference.version,
                systemKeyID: stored.systemKeyID)
        }
        do {
            return try Envelope.unwrap(stored.encryptedKey, under: systemKey)
        } catch {
            throw EncryptionError(
                .decryptionFailed,
                "the data key of \(stored.reference.label) does not decrypt under system key '\(stored.systemKeyID)': "
                    + "the stored key was altered, or the key file \(stored.systemKeyID).key is not the key it was wrapped with",
                scope: stored.reference.scope, scopeID: stored.reference.scopeID, keyVersion: stored.reference.version,
                systemKeyID: stored.systemKeyID)
        }
    }

    /// The subject's active key, created (version 1) when it has none. A concurrent writer
    /// creating the same subject's key is waited for, and its key used (at READ COMMITTED).
    public func activeOrNewKey(scope: String, scopeID: String, on database: some PostgresQuerying) async throws
        -> StoredKey
    {
        if let key = try await self.activeKey(scope: scope, scopeID: scopeID, on: database) { return key }
        try await self.insertNewKey(
            KeyReference(scope: scope, scopeID: scopeID, version: 1), on: database, ignoringConflict: true)
        guard let key = try await self.activeKey(scope: scope, scopeID: scopeID, on: database) else {
            throw EncryptionError(
                .keyNotFound,
                "scope '\(scope)', scope_id '\(scopeID)' has no active key and version 1 exists (revoked, or not yet "
                    + "visible to this transaction's snapshot): rotate the key, or retry at READ COMMITTED",
                scope: scope, scopeID: scopeID)
        }
        return key
    }

    /// Generates a data key, wraps it under the active system key and inserts it.
    private func insertNewKey(
        _ reference: KeyReference, on database: some PostgresQuerying, ignoringConflict: Bool = false
    ) async throws {
        let wrapped = try Envelope.wrap(Envelope.generateDataKey(), under: self.keyring.activeKey)
        try await database.query(
            """
            INSERT INTO \(self.table.quoted) (scope, scope_id, key_version, encrypted_key, system_key_id)
            VALUES ($1, $2, $3, $4, $5)\(ignoringConflict ? " ON CONFLICT (scope, scope_id, key_version) DO NOTHING" : "")
            """,
            [reference.scope, reference.scopeID, Int32(clamping: reference.version), wrapped, self.keyring.activeKeyID])
    }
}
