import Crypto
import Foundation
import Postgres

/// Replaces the `$encrypted` objects of event payloads (at any depth) by the values they
/// encrypted, fetching data keys through a `KeyCache`; where a subject's keys were destroyed,
/// the field becomes JSON `null` and is reported in `DecryptedPayload.nulledFields`.
///
/// A payload without the bytes `$encrypted` comes back as it is, without parsing. Errors
/// (`EncryptionError`) name the field's path, scope, scope id and key version, never a value
/// or a key.
public struct PayloadDecryptor: Sendable {
    public let keyStore: KeyStore
    public let cache: KeyCache

    public init(keyStore: KeyStore, cache: KeyCache = KeyCache()) {
        self.keyStore = keyStore
        self.cache = cache
    }

    /// Whether `payload` may hold encrypted fields (contains the bytes `$encrypted`).
    public static func mayContainEncryptedFields(_ payload: [UInt8]) -> Bool {
        payload.withUnsafeBufferPointer(JSONText.containsMarker)
    }

    /// Decrypts one payload (UTF-8 JSON); keys the cache lacks are read on `database`.
    public func decrypt(_ payload: [UInt8], on database: some PostgresQuerying) async throws -> DecryptedPayload {
        guard Self.mayContainEncryptedFields(payload) else { return DecryptedPayload(bytes: payload) }
        return try await self.decrypt([payload], on: database)[0]
    }

    /// Decrypts several payloads (e.g. a batch of events) with one key query for all the keys
    /// the cache lacks.
    public func decrypt(_ payloads: [[UInt8]], on database: some PostgresQuerying) async throws -> [DecryptedPayload] {
        let parsed = try payloads.map(Self.parse)
        var missing = Set<KeyReference>()
        var keys: [KeyReference: KeyCache.Entry] = [:]
        for field in parsed.joined() where keys[field.key] == nil {
            if let entry = self.cache.lookup(field.key) { keys[field.key] = entry } else { missing.insert(field.key) }
        }
        if !missing.isEmpty {
            let stored = try await self.keyStore.keys(missing, on: database)
            for reference in missing {
                let entry: KeyCache.Entry = try stored[reference].map { .dataKey(try self.keyStore.unwrap($0)) } ?? .destroyed
                self.cache.insert(entry, for: reference)
                keys[reference] = entry
            }
        }
        return try zip(payloads, parsed).map { payload, fields in
            try Self.splice(payload, fields: fields, keys: keys)
        }
    }

    /// One encrypted field of a payload, located and read.
    struct Field {
        var location: EncryptedFieldLocation
        var key: KeyReference
        var ciphertext: [UInt8]
    }

    static func parse(_ payload: [UInt8]) throws -> [Field] {
        guard self.mayContainEncryptedFields(payload) else { return [] }
        return try payload.withUnsafeBufferPointer { buffer in
            try JSONScanner.encryptedFields(in: buffer).map { location in
                let body = Data(buffer[location.bodyRange])
                guard let decoded = try? JSONDecoder().decode(EncryptedField.Body.self, from: body),
                    decoded.key_version >= 1, let ciphertext = Data(base64Encoded: decoded.ciphertext),
                    ciphertext.count >= Envelope.nonceSize + Envelope.tagSize
                else {
                    throw EncryptionError(
                        .malformedField,
                        "the encrypted field at '\(location.path)' is malformed: \"\(EncryptedField.marker)\" needs "
                            + "scope and scope_id (strings), key_version (an integer from 1) and ciphertext (base64 of "
                            + "[nonce][ciphertext][tag])")
                }
                return Field(
                    location: location,
                    key: KeyReference(scope: decoded.scope, scopeID: decoded.scope_id, version: decoded.key_version),
                    ciphertext: Array(ciphertext))
            }
        }
    }

    static func splice(_ payload: [UInt8], fields: [Field], keys: [KeyReference: KeyCache.Entry]) throws
        -> DecryptedPayload
    {
        guard !fields.isEmpty else { return DecryptedPayload(bytes: payload) }
        var result = DecryptedPayload(bytes: [])
        result.bytes.reserveCapacity(payload.count)
        var copied = 0
        for field in fields {
            result.bytes += payload[copied..<field.location.range.lowerBound]
            copied = field.location.range.upperBound
            switch keys[field.key] {
            case .dataKey(let dataKey):
                result.bytes += try self.open(field, with: dataKey)
                result.decryptedFieldCount += 1
            case .destroyed, nil:
                result.bytes += Array("null".utf8)
                result.nulledFields.append(NulledField(path: field.location.path, key: field.key))
            }
        }
        result.bytes += payload[copied...]
        return result
    }

    private static func open(_ field: Field, with dataKey: SymmetricKey) throws -> [UInt8] {
        let plaintext: [UInt8]
        do {
            plaintext = try Envelope.open(field.ciphertext, using: dataKey)
        } catch {
            throw EncryptionError(
                .decryptionFailed,
                "the encrypted field at '\(field.location.path)' does not decrypt with the data key of \(field.key.label): "
                    + "its ciphertext was altered, or was made under another key with the same scope, scope_id and version",
                scope: field.key.scope, scopeID: field.key.scopeID, keyVersion: field.key.version)
        }
        guard plaintext.withUnsafeBufferPointer(JSONScanner.isJSON) else {
            throw EncryptionError(
                .malformedField,
                "the encrypted field at '\(field.location.path)' (\(field.key.label)) decrypts to something that is not "
                    + "JSON text: its writer must encrypt the JSON text of the value",
                scope: field.key.scope, scopeID: field.key.scopeID, keyVersion: field.key.version)
        }
        return plaintext
    }
}
