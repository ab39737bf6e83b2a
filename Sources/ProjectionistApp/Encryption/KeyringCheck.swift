import Encryption
import EventStore
import Foundation
import Postgres

/// The start-up check of the keyring against the key table: every system key that wraps a data
/// key is in the keyring, and its file is the key that wrapped them (one data key of each
/// unwraps). A mismatch is a configuration error naming the file, never a stream of per-event
/// failures later.
enum KeyringCheck {
    /// - Throws: `SchemaError` when the key table is missing (run `migrate`), `ConfigurationError`
    ///   naming the key file (or `encryption.system_keys`) when the keyring cannot read the table.
    static func verify(_ configuration: ProjectionistConfiguration, keyStore: KeyStore, on connection: PostgresConnection) async throws {
        let table = keyStore.table
        let exists = try await connection.query("SELECT to_regclass($1) IS NOT NULL", [table.quoted])
        guard try exists[0].decode(Bool.self, at: 0) else {
            throw SchemaError(
                "the encryption key table \(table) is missing: run `projectionist migrate` (it creates it when encryption is configured)")
        }
        // One data key per system key: the newest it wraps (the system_key_id index serves it).
        let rows = try await connection.query(
            """
            SELECT DISTINCT ON (system_key_id) scope, scope_id, key_version, encrypted_key, system_key_id, created_at, revoked_at
            FROM \(table.quoted) ORDER BY system_key_id, created_at DESC
            """)
        for row in rows {
            let stored = try StoredKey(row: row)
            guard keyStore.keyring.key(stored.systemKeyID) != nil else {
                throw ConfigurationError(
                    file: configuration.file, keyPath: "encryption.system_keys",
                    message: "the key table \(table) holds data keys wrapped under system key '\(stored.systemKeyID)', which the keyring "
                        + "lacks (it has \(keyStore.keyring.keyIDs.joined(separator: ", "))): add \(configuration.keyFilePath(for: stored.systemKeyID)), "
                        + "or re-wrap those data keys first (`projectionist keys rewrap` with the old key still present)")
            }
            do {
                _ = try keyStore.unwrap(stored)
            } catch {
                throw ConfigurationError(
                    file: configuration.file, keyPath: "encryption.system_keys",
                    message: "system key file \(configuration.keyFilePath(for: stored.systemKeyID)) does not unwrap the data keys wrapped "
                        + "under '\(stored.systemKeyID)' (e.g. scope '\(stored.reference.scope)', version \(stored.reference.version)): "
                        + "it holds another key than the one that wrapped them; restore the original file")
            }
        }
    }
}

extension ProjectionistConfiguration {
    /// The file the keyring reads (or would read) system key `id` from.
    func keyFilePath(for id: String) -> String {
        switch self.encryption?.systemKeys {
        case .directory(let directory)?: return URL(fileURLWithPath: directory).appendingPathComponent("\(id).key").path
        case .files(let files)?:
            return files.first { URL(fileURLWithPath: $0).lastPathComponent == "\(id).key" } ?? "\(id).key"
        case nil: return "\(id).key"
        }
    }
}
