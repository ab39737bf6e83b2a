import Foundation
import Postgres

/// A stored data key as read from the key table: still wrapped under a system key.
public struct StoredKey: Sendable, Hashable {
    /// Subject and version: the row's primary key.
    public var reference: KeyReference
    /// `[nonce][ciphertext][tag]` of the data key under system key `systemKeyID`.
    public var encryptedKey: [UInt8]
    /// The id of the system key (key file name without `.key`) that wraps it.
    public var systemKeyID: String
    /// When this version was created.
    public var createdAt: Date
    /// Set once a later version replaced this one; revoked keys still decrypt.
    public var revokedAt: Date?
}

extension StoredKey {
    /// Reads a row of `scope, scope_id, key_version, encrypted_key, system_key_id, created_at, revoked_at`.
    public init(row: Row) throws {
        self.init(
            reference: KeyReference(
                scope: try row.decode(String.self, at: 0), scopeID: try row.decode(String.self, at: 1),
                version: try row.decode(Int.self, at: 2)),
            encryptedKey: try row.decode([UInt8].self, at: 3), systemKeyID: try row.decode(String.self, at: 4),
            createdAt: try row.decode(Date.self, at: 5), revokedAt: try row.decode(Date?.self, at: 6))
    }
}
