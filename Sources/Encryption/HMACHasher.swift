import Crypto
import Foundation

/// Deterministic ids and lookup keys from sensitive values: HMAC-SHA256 of the value's UTF-8
/// bytes, as lowercase hex (64 characters), exactly eventsalsa/encryption's `hash.HMACHasher`.
/// (Named so as not to shadow Swift's own `Hasher`.) Its description never shows the key.
public struct HMACHasher: Sendable, CustomStringConvertible {
    private let key: SymmetricKey

    public init(key: SymmetricKey) { self.key = key }

    /// A hasher keyed with these bytes.
    public init(key bytes: some ContiguousBytes) { self.key = SymmetricKey(data: bytes) }

    /// The lowercase hex HMAC-SHA256 of `plaintext`'s UTF-8 bytes.
    public func hash(_ plaintext: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(plaintext.utf8), using: self.key)
        return mac.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    public var description: String { "HMACHasher(<redacted>)" }
}
