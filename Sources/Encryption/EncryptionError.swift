/// A key-store, encryption or decryption failure. It names the subject (scope, scope id, key
/// version) and the system key id where they apply, never a plaintext, a ciphertext or a key.
public struct EncryptionError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, Hashable {
        /// `createKey` for a subject that already has an active key.
        case keyExists
        /// `rotateKey` (or a lookup that needs one) for a subject without an active key.
        case keyNotFound
        /// A data key wrapped under a system key the keyring does not have.
        case unknownSystemKey
        /// Authentication failed: altered bytes, or a key that is not the one used to encrypt.
        case decryptionFailed
        /// An `$encrypted` object that is not in the expected shape.
        case malformedField
        /// Bytes that are not JSON where JSON is required.
        case invalidJSON
        /// Options that cannot work (e.g. a batch size below 1).
        case invalidArgument
    }

    public var code: Code
    public var message: String
    public var scope: String?
    public var scopeID: String?
    public var keyVersion: Int?
    public var systemKeyID: String?

    public init(
        _ code: Code, _ message: String, scope: String? = nil, scopeID: String? = nil, keyVersion: Int? = nil,
        systemKeyID: String? = nil
    ) {
        self.code = code
        self.message = message
        self.scope = scope
        self.scopeID = scopeID
        self.keyVersion = keyVersion
        self.systemKeyID = systemKeyID
    }

    public var description: String { "\(self.code.rawValue): \(self.message)" }
}

extension KeyReference {
    /// `scope/scope_id version N`, for messages.
    var label: String { "scope '\(self.scope)', scope_id '\(self.scopeID)', key version \(self.version)" }
}
