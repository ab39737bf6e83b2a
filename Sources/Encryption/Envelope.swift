import Crypto
import Foundation

/// AES-256-GCM as eventsalsa/encryption's `cipher/aesgcm` does it: a random 12-byte nonce per
/// message, no additional authenticated data, output `[nonce][ciphertext][16-byte tag]`. Data
/// keys (DEKs, 32 random bytes) are wrapped the same way under a system key.
public enum Envelope {
    /// Bytes of the random nonce that starts every sealed message.
    public static let nonceSize = 12
    /// Bytes of the GCM tag that ends every sealed message.
    public static let tagSize = 16
    /// Bytes of every key, system or data (AES-256).
    public static let keySize = 32

    /// Encrypts `plaintext` under `key` (32 bytes). - Returns: `[nonce][ciphertext][tag]`.
    public static func seal(_ plaintext: some DataProtocol, using key: SymmetricKey) throws -> [UInt8] {
        precondition(key.bitCount == 256, "AES-256-GCM takes a 32-byte key")
        let box = try AES.GCM.seal(plaintext, using: key)  // a fresh random 12-byte nonce
        return Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    /// Decrypts `[nonce][ciphertext][tag]` under `key`.
    /// - Throws: `CryptoKitError` when it is shorter than nonce and tag, or fails authentication
    ///   (wrong key, altered bytes).
    public static func open(_ sealed: some DataProtocol, using key: SymmetricKey) throws -> [UInt8] {
        precondition(key.bitCount == 256, "AES-256-GCM takes a 32-byte key")
        let bytes = Array(sealed)
        guard bytes.count >= self.nonceSize + self.tagSize else { throw CryptoKitError.incorrectParameterSize }
        let box = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: bytes[..<self.nonceSize]),
            ciphertext: bytes[self.nonceSize..<(bytes.count - self.tagSize)],
            tag: bytes[(bytes.count - self.tagSize)...])
        return Array(try AES.GCM.open(box, using: key))
    }

    /// A new data key: 32 random bytes.
    public static func generateDataKey() -> SymmetricKey { SymmetricKey(size: .bits256) }

    /// Wraps (encrypts) a data key under a system key, as stored in `encrypted_key`.
    public static func wrap(_ dataKey: SymmetricKey, under systemKey: SymmetricKey) throws -> [UInt8] {
        try dataKey.withUnsafeBytes { try self.seal($0, using: systemKey) }
    }

    /// Unwraps a stored data key. - Throws: when authentication fails or it is not 32 bytes.
    public static func unwrap(_ wrapped: some DataProtocol, under systemKey: SymmetricKey) throws -> SymmetricKey {
        var bytes = try self.open(wrapped, using: systemKey)
        defer { bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }  // best effort
        guard bytes.count == self.keySize else { throw CryptoKitError.incorrectKeySize }
        return SymmetricKey(data: bytes)
    }
}
