import Foundation

/// Where an encrypted value sits in a payload whose layout the application chose (as payloads
/// written through eventsalsa's Go adapters): the field holding the base64 ciphertext
/// (`[nonce][ciphertext][tag]` under the subject's data key), the key's scope, and where the
/// scope id and the key version come from.
public struct EncryptedFieldMapping: Sendable, Hashable {
    /// Where a scope id or a key version is read.
    public enum Source: Sendable, Hashable {
        /// A field of the payload, by its path of object keys.
        case payload([String])
        /// The event's aggregate id.
        case aggregateID
        /// A fixed value.
        case literal(String)
    }

    /// What the decrypted bytes are.
    public enum Plaintext: String, Sendable, Hashable {
        /// UTF-8 text: the field becomes a JSON string (eventsalsa encrypts a value's bytes).
        case string
        /// JSON text: the field becomes that value.
        case json
    }

    /// The path of object keys to the field, e.g. `["customer", "email"]`.
    public var field: [String]
    public var scope: String
    public var scopeID: Source
    public var keyVersion: Source
    public var plaintext: Plaintext

    public init(field: [String], scope: String, scopeID: Source, keyVersion: Source, plaintext: Plaintext = .string) {
        self.field = field
        self.scope = scope
        self.scopeID = scopeID
        self.keyVersion = keyVersion
        self.plaintext = plaintext
    }

    /// The field's path as written in messages: `customer.email`.
    public var path: String { self.field.joined(separator: ".") }
}

/// One event's mapped fields, located in its parsed payload.
struct MappedPayload {
    struct Field {
        var mapping: EncryptedFieldMapping
        var key: KeyReference
        var ciphertext: [UInt8]
    }

    var object: [String: Any]
    var fields: [Field]

    /// Parses `payload` and reads every mapped field that is present (an absent or null field
    /// is left alone: that event carries no such value).
    /// - Throws: `EncryptionError` naming the field when the payload is not a JSON object, the
    ///   value is not base64 text, or the scope id or version cannot be read.
    init(payload: [UInt8], aggregateID: String, mappings: [EncryptedFieldMapping]) throws(EncryptionError) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else {
            throw EncryptionError(.invalidJSON, "the payload is not a JSON object, so mapped encrypted fields cannot be read")
        }
        self.object = object
        self.fields = []
        for mapping in mappings {
            guard let value = Self.value(at: mapping.field, in: object), !(value is NSNull) else { continue }
            guard let text = value as? String, let ciphertext = Data(base64Encoded: text), ciphertext.count >= Envelope.nonceSize + Envelope.tagSize else {
                throw EncryptionError(
                    .malformedField, "the mapped encrypted field '\(mapping.path)' does not hold base64 of [nonce][ciphertext][tag]")
            }
            let scopeID = try Self.text(mapping.scopeID, object, aggregateID, what: "scope id", of: mapping)
            let versionText = try Self.text(mapping.keyVersion, object, aggregateID, what: "key version", of: mapping)
            guard let version = Int(versionText), KeyReference.versions.contains(version) else {
                throw EncryptionError(
                    .malformedField, "the key version of mapped field '\(mapping.path)' is not an integer from 1 to \(Int32.max)")
            }
            let key = KeyReference(scope: mapping.scope, scopeID: scopeID, version: version)
            guard key.isStorable else {
                throw EncryptionError(.malformedField, "the scope or scope id of mapped field '\(mapping.path)' contains a NUL character")
            }
            self.fields.append(Field(mapping: mapping, key: key, ciphertext: Array(ciphertext)))
        }
    }

    /// The payload with every located field decrypted (or null where the key was destroyed).
    func decrypt(with keys: [KeyReference: Result<KeyCache.Entry, EncryptionError>]) throws(EncryptionError) -> ([UInt8], [NulledField]) {
        var object = self.object
        var nulled: [NulledField] = []
        for field in self.fields {
            let value: Any
            switch try keys[field.key]?.get() {
            case .dataKey(let dataKey, _):
                guard let plaintext = try? Envelope.open(field.ciphertext, using: dataKey) else {
                    throw EncryptionError(
                        .decryptionFailed,
                        "the mapped encrypted field '\(field.mapping.path)' does not decrypt with the data key of \(field.key.label)",
                        scope: field.key.scope, scopeID: field.key.scopeID, keyVersion: field.key.version)
                }
                value = try Self.value(of: plaintext, field)
            case .destroyed, nil:
                value = NSNull()
                nulled.append(NulledField(path: field.mapping.path, key: field.key))
            }
            Self.set(value, at: field.mapping.field, in: &object)
        }
        guard let bytes = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw EncryptionError(.invalidJSON, "the payload could not be written back as JSON after decrypting its mapped fields")
        }
        return (Array(bytes), nulled)
    }

    private static func value(of plaintext: [UInt8], _ field: Field) throws(EncryptionError) -> Any {
        switch field.mapping.plaintext {
        case .string:
            guard let text = String(validating: plaintext, as: UTF8.self) else {
                throw EncryptionError(.malformedField, "the mapped field '\(field.mapping.path)' (\(field.key.label)) decrypts to bytes that are not UTF-8 text",
                    scope: field.key.scope, scopeID: field.key.scopeID, keyVersion: field.key.version)
            }
            return text
        case .json:
            guard let value = try? JSONSerialization.jsonObject(with: Data(plaintext), options: .fragmentsAllowed) else {
                throw EncryptionError(.malformedField, "the mapped field '\(field.mapping.path)' (\(field.key.label)) decrypts to something that is not JSON text",
                    scope: field.key.scope, scopeID: field.key.scopeID, keyVersion: field.key.version)
            }
            return value
        }
    }

    private static func text(_ source: EncryptedFieldMapping.Source, _ object: [String: Any], _ aggregateID: String, what: String, of mapping: EncryptedFieldMapping)
        throws(EncryptionError) -> String
    {
        switch source {
        case .aggregateID: return aggregateID
        case .literal(let text): return text
        case .payload(let path):
            switch self.value(at: path, in: object) {
            case let text as String: return text
            case let number as NSNumber where Double(number.int64Value) == number.doubleValue: return String(number.int64Value)
            default:
                throw EncryptionError(
                    .malformedField, "the \(what) of mapped field '\(mapping.path)' is missing: no text or whole number at '\(path.joined(separator: "."))'")
            }
        }
    }

    static func value(at path: [String], in object: [String: Any]) -> Any? {
        var current: Any = object
        for key in path {
            guard let next = (current as? [String: Any])?[key] else { return nil }
            current = next
        }
        return current
    }

    static func set(_ value: Any, at path: [String], in object: inout [String: Any]) {
        guard let first = path.first else { return }
        if path.count == 1 {
            object[first] = value
        } else if var child = object[first] as? [String: Any] {
            self.set(value, at: Array(path.dropFirst()), in: &child)
            object[first] = child
        }
    }
}
