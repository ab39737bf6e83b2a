import Crypto
import Foundation

/// The system keys (KEKs) that wrap the data keys, by id, and which one wraps new ones.
///
/// Files hold the base64 (standard alphabet) of exactly 32 bytes, are readable by their owner
/// only, and are named `<id>.key` (eventsalsa/encryption's `systemkey` format). The keyring's
/// description never shows key material.
public struct SystemKeyring: Sendable, CustomStringConvertible {
    private let keys: [String: SymmetricKey]
    /// The id of the key that wraps new data keys (and the target of a re-wrap).
    public let activeKeyID: String

    /// A keyring of keys already in memory (each must be 32 bytes).
    /// - Throws: `KeyringError.activeKeyMissing` when `activeKeyID` is not a key of `keys`,
    ///   `.wrongKeySize` for a key that is not 32 bytes.
    public init(keys: [String: SymmetricKey], activeKeyID: String) throws(KeyringError) {
        for (id, key) in keys where key.bitCount != 256 {
            throw .wrongKeySize(path: "(in memory) \(id)", byteCount: key.bitCount / 8)
        }
        guard keys[activeKeyID] != nil else { throw .activeKeyMissing(id: activeKeyID, available: keys.keys.sorted()) }
        self.keys = keys
        self.activeKeyID = activeKeyID
    }

    /// Loads every `<id>.key` file of `directory` (other files are ignored).
    /// - Throws: `KeyringError` naming the directory or file and what to do.
    public static func load(directory: String, activeKeyID: String) throws(KeyringError) -> SystemKeyring {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .unreadableDirectory(path: directory, reason: (error as NSError).localizedDescription)
        }
        let files = names.filter { $0.hasSuffix(".key") }.sorted().map {
            URL(fileURLWithPath: directory).appendingPathComponent($0).path
        }
        guard !files.isEmpty else { throw .emptyDirectory(path: directory) }
        return try self.load(files: files, activeKeyID: activeKeyID)
    }

    /// Loads the given files; each key's id is its file name without `.key`.
    /// - Throws: `KeyringError` naming the file and what to do.
    public static func load(files: [String], activeKeyID: String) throws(KeyringError) -> SystemKeyring {
        var keys: [String: SymmetricKey] = [:]
        var paths: [String: String] = [:]
        for path in files {
            let id = SystemKeyFile.keyID(forPath: path)
            guard !id.isEmpty else { throw .invalidKeyID(path: path) }
            if let other = paths[id] { throw .duplicateKeyID(id: id, paths: [other, path]) }
            keys[id] = try SystemKeyFile.read(path)
            paths[id] = path
        }
        return try SystemKeyring(keys: keys, activeKeyID: activeKeyID)
    }

    /// The ids of all keys, sorted.
    public var keyIDs: [String] { self.keys.keys.sorted() }

    /// The key with id `id`, or nil when the keyring does not have it.
    public func key(_ id: String) -> SymmetricKey? { self.keys[id] }

    /// The key that wraps new data keys.
    public var activeKey: SymmetricKey { self.keys[self.activeKeyID]! }

    public var description: String { "SystemKeyring(active: \(self.activeKeyID), keys: \(self.keyIDs))" }
}
