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
    /// When the key table is asked about a key the cache holds.
    public enum KeyFreshness: Sendable, Hashable {
        /// Only after the cache entry expires: no query while every key is cached, but a key
        /// destroyed by another process keeps decrypting here for up to the entry lifetime.
        case cached
        /// On every call, for every key it needs (one query per call): a key destroyed in a
        /// committed transaction is never used again, and a caller reading in a transaction sees
        /// the keys of its own snapshot. The cache then only saves unwrapping.
        case checkedEachCall
    }

    public let keyStore: KeyStore
    public let cache: KeyCache
    public let freshness: KeyFreshness

    public init(keyStore: KeyStore, cache: KeyCache = KeyCache(), freshness: KeyFreshness = .cached) {
        self.keyStore = keyStore
        self.cache = cache
        self.freshness = freshness
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
    /// the cache lacks; the first payload that fails throws.
    public func decrypt(_ payloads: [[UInt8]], on database: some PostgresQuerying) async throws -> [DecryptedPayload] {
        try await self.results(payloads, on: database).map { try $0.get() }
    }

    /// Decrypts several payloads with one key query, each on its own: a malformed field, an
    /// altered ciphertext or a data key under a system key the keyring lacks fails only the
    /// payloads concerned. Throws only what the database throws.
    public func results(_ payloads: [[UInt8]], on database: some PostgresQuerying) async throws
        -> [Result<DecryptedPayload, EncryptionError>]
    {
        try await self.resultsAndKeys(payloads, on: database).results
    }

    /// `results(_:on:)`, and the data keys it found (those that decrypted, or would have).
    func resultsAndKeys(_ payloads: [[UInt8]], on database: some PostgresQuerying) async throws
        -> (results: [Result<DecryptedPayload, EncryptionError>], found: Set<KeyReference>)
    {
        let parsed = payloads.map { payload in Result { () throws(EncryptionError) in try Self.parse(payload) } }
        let references = Set(parsed.lazy.compactMap { try? $0.get() }.joined().map(\.key))
        let keys = try await self.dataKeys(references, on: database)
        let results = zip(payloads, parsed).map { payload, fields in
            fields.flatMap { fields in Result { () throws(EncryptionError) in try Self.splice(payload, fields: fields, keys: keys) } }
        }
        return (results, Self.found(keys))
    }

    /// The references whose data key was in the table.
    static func found(_ keys: [KeyReference: Result<KeyCache.Entry, EncryptionError>]) -> Set<KeyReference> {
        Set(keys.lazy.filter { if case .success(.destroyed) = $0.value { false } else { true } }.map(\.key))
    }

    /// The data key (or why there is none) of each reference, through the cache.
    func dataKeys(_ references: Set<KeyReference>, on database: some PostgresQuerying) async throws
        -> [KeyReference: Result<KeyCache.Entry, EncryptionError>]
    {
        var keys: [KeyReference: Result<KeyCache.Entry, EncryptionError>] = [:]
        var missing = Set<KeyReference>()
        switch self.freshness {
        case .cached:
            for reference in references {
                if let entry = self.cache.lookup(reference) { keys[reference] = .success(entry) } else { missing.insert(reference) }
            }
        case .checkedEachCall:
            missing = references
        }
        guard !missing.isEmpty else { return keys }
        let stored = try await self.keyStore.keys(missing, on: database)
        for reference in missing {
            guard let key = stored[reference] else {
                self.cache.insert(.destroyed, for: reference)
                keys[reference] = .success(.destroyed)
                continue
            }
            if case .dataKey(let dataKey, let wrapped)? = self.cache.lookup(reference), wrapped == key.encryptedKey {
                keys[reference] = .success(.dataKey(dataKey, wrapped: wrapped))
                continue
            }
            do {
                let entry = KeyCache.Entry.dataKey(try self.keyStore.unwrap(key), wrapped: key.encryptedKey)
                self.cache.insert(entry, for: reference)
                keys[reference] = .success(entry)
            } catch let error as EncryptionError {
                self.cache.remove(reference)
                keys[reference] = .failure(error)
            }
        }
        return keys
    }

    /// One encrypted field of a payload, located and read.
    struct Field {
        var location: EncryptedFieldLocation
        var key: KeyReference
        var ciphertext: [UInt8]
    }

    static func parse(_ payload: [UInt8]) throws(EncryptionError) -> [Field] {
        guard self.mayContainEncryptedFields(payload) else { return [] }
        do {
            return try self.fields(in: payload)
        } catch let error as EncryptionError {
            throw error
        } catch {
            throw EncryptionError(.invalidJSON, "the payload is not JSON: \(error)")
        }
    }

    private static func fields(in payload: [UInt8]) throws -> [Field] {
        try payload.withUnsafeBufferPointer { buffer in
            try JSONScanner.encryptedFields(in: buffer).map { location in
                let body = Data(buffer[location.bodyRange])
                guard let decoded = try? JSONDecoder().decode(EncryptedField.Body.self, from: body),
                    KeyReference(scope: decoded.scope, scopeID: decoded.scope_id, version: decoded.key_version).isStorable,
                    let ciphertext = Data(base64Encoded: decoded.ciphertext), ciphertext.count >= Envelope.nonceSize + Envelope.tagSize
                else {
                    throw EncryptionError(
                        .malformedField,
                        "the encrypted field at '\(location.path)' is malformed: \"\(EncryptedField.marker)\" needs "
                            + "scope and scope_id (strings without NUL), key_version (an integer from 1 to \(Int32.max)) and "
                            + "ciphertext (base64 of [nonce][ciphertext][tag])")
                }
                return Field(
                    location: location,
                    key: KeyReference(scope: decoded.scope, scopeID: decoded.scope_id, version: decoded.key_version),
                    ciphertext: Array(ciphertext))
            }
        }
    }

    static func splice(_ payload: [UInt8], fields: [Field], keys: [KeyReference: Result<KeyCache.Entry, EncryptionError>])
        throws(EncryptionError) -> DecryptedPayload
    {
        guard !fields.isEmpty else { return DecryptedPayload(bytes: payload) }
        var result = DecryptedPayload(bytes: [])
        result.bytes.reserveCapacity(payload.count)
        var copied = 0
        for field in fields {
            result.bytes += payload[copied..<field.location.range.lowerBound]
            copied = field.location.range.upperBound
            switch try keys[field.key]?.get() {
            case .dataKey(let dataKey, _):
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

    private static func open(_ field: Field, with dataKey: SymmetricKey) throws(EncryptionError) -> [UInt8] {
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
