import Crypto
import Foundation
import Postgres

/// Encrypts JSON values into `EncryptedField`s for a subject (scope and scope id), under the
/// subject's active data key.
public struct FieldEncryptor: Sendable {
    public let keyStore: KeyStore

    public init(keyStore: KeyStore) { self.keyStore = keyStore }

    /// Encrypts `json`, the UTF-8 JSON text of one value (string, number, object, ...), under the
    /// subject's active data key. **Creates the subject's key (version 1) when it has none**, on
    /// `database`: pass the transaction that appends the event, so the key commits with it.
    /// - Throws: `EncryptionError.invalidJSON` when `json` is not one JSON value.
    public func encrypt(
        json: some Collection<UInt8>, scope: String, scopeID: String, on database: some PostgresQuerying
    ) async throws -> EncryptedField {
        let text = Array(json)
        guard text.withUnsafeBufferPointer(JSONScanner.isJSON) else {
            throw EncryptionError(
                .invalidJSON, "the value to encrypt for scope '\(scope)', scope_id '\(scopeID)' is not JSON text",
                scope: scope, scopeID: scopeID)
        }
        let stored = try await self.keyStore.activeOrNewKey(scope: scope, scopeID: scopeID, on: database)
        return try Self.encrypt(json: text, with: self.keyStore.unwrap(stored), key: stored.reference)
    }

    /// Encrypts `value` encoded as JSON (`JSONEncoder`, sorted keys); see `encrypt(json:...)`,
    /// which also **creates the subject's key when it has none**.
    public func encrypt(
        _ value: some Encodable, scope: String, scopeID: String, on database: some PostgresQuerying
    ) async throws -> EncryptedField {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try await self.encrypt(json: Array(encoder.encode(value)), scope: scope, scopeID: scopeID, on: database)
    }

    /// Encrypts JSON text with a data key already in hand (no database).
    public static func encrypt(json: [UInt8], with dataKey: SymmetricKey, key: KeyReference) throws -> EncryptedField {
        EncryptedField(key: key, ciphertext: try Envelope.seal(json, using: dataKey))
    }
}
