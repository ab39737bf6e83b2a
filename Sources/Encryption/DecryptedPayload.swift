/// A payload with its encrypted fields replaced.
public struct DecryptedPayload: Sendable, Hashable {
    /// The payload: each `$encrypted` object replaced by the value it encrypted, or by `null`
    /// where the subject's keys were destroyed; every other byte as it was.
    public var bytes: [UInt8]
    /// How many fields were decrypted.
    public var decryptedFieldCount: Int
    /// The fields that became `null` because their key is gone (crypto-shredded).
    public var nulledFields: [NulledField]

    public init(bytes: [UInt8], decryptedFieldCount: Int = 0, nulledFields: [NulledField] = []) {
        self.bytes = bytes
        self.decryptedFieldCount = decryptedFieldCount
        self.nulledFields = nulledFields
    }
}

/// A field set to `null` because its data key was destroyed.
public struct NulledField: Sendable, Hashable, CustomStringConvertible {
    /// JSON Pointer (RFC 6901) of the field, e.g. `/customer/email`.
    public var path: String
    /// The destroyed key it was encrypted under.
    public var key: KeyReference

    public init(path: String, key: KeyReference) {
        self.path = path
        self.key = key
    }

    public var description: String { "\(self.path.isEmpty ? "(whole payload)" : self.path) (key \(self.key) destroyed)" }
}
