import Encryption
import Postgres
import Yams

extension ProjectionistConfiguration {
    /// The keyring and key table of envelope encryption (`encryption:`), for projections with
    /// `decrypt: true` and the `keys` commands.
    public struct Encryption: Sendable {
        /// Where the system keys are: a directory of `<id>.key` files, or a list of files.
        public enum SystemKeys: Sendable, Hashable {
            case directory(String)
            case files([String])
        }

        public var systemKeys: SystemKeys
        public var activeKey: String
        public var keysTable = KeyStore.defaultTable
        /// Unwrapped data keys kept in memory (at least 1), and for how long.
        public var keyCacheSize = 10_000
        public var keyCacheLifetime: Duration = .seconds(300)
    }

    mutating func readEncryption(_ node: Node, _ reader: YAMLReader) throws {
        let keys = try reader.mapping(node, at: "encryption", allowed: Keys.encryption)
        guard let systemKeysNode = keys["system_keys"] else {
            throw reader.error("encryption", node, "missing key 'system_keys' (a directory of <id>.key files, or a list of files)")
        }
        guard let activeNode = keys["active_key"] else {
            throw reader.error("encryption", node, "missing key 'active_key' (the id of the system key that wraps new data keys)")
        }
        let systemKeys: Encryption.SystemKeys
        if case .sequence = systemKeysNode {
            let files = try reader.sequence(systemKeysNode, at: "encryption.system_keys").enumerated().map {
                try reader.string($0.element, at: "encryption.system_keys[\($0.offset)]")
            }
            guard !files.isEmpty else { throw reader.error("encryption.system_keys", systemKeysNode, "an empty list holds no key") }
            systemKeys = .files(files)
        } else {
            systemKeys = .directory(try reader.string(systemKeysNode, at: "encryption.system_keys"))
        }
        let active = try reader.string(activeNode, at: "encryption.active_key")
        guard !active.isEmpty else { throw reader.error("encryption.active_key", activeNode, "must not be empty") }
        var encryption = Encryption(systemKeys: systemKeys, activeKey: active)
        if let value = keys["keys_table"] { encryption.keysTable = try Self.tableName(value, "encryption.keys_table", reader) }
        if let value = keys["key_cache_size"] {
            encryption.keyCacheSize = try reader.integer(value, at: "encryption.key_cache_size", in: Bounds.keyCacheSize, why: " keys")
        }
        if let value = keys["key_cache_lifetime"] {
            encryption.keyCacheLifetime = try reader.duration(value, at: "encryption.key_cache_lifetime", in: Bounds.keyCacheLifetime)
        }
        self.encryption = encryption
    }

    /// `decrypt:` as a list: each entry maps one encrypted field of the application's own layout.
    static func encryptedFields(_ node: Node, at path: String, _ reader: YAMLReader) throws -> [EncryptedFieldMapping] {
        let entries = try reader.sequence(node, at: path)
        guard !entries.isEmpty else { throw reader.error(path, node, "an empty list maps no field: use true or false") }
        return try entries.enumerated().map { index, entry in
            let at = "\(path)[\(index)]"
            let keys = try reader.mapping(entry, at: at, allowed: Keys.encryptedField)
            func required(_ key: String) throws -> (String, Node) {
                guard let value = keys[key] else { throw reader.error(at, entry, "missing key '\(key)'") }
                let text = try reader.string(value, at: "\(at).\(key)")
                guard !text.isEmpty else { throw reader.error("\(at).\(key)", value, "must not be empty") }
                return (text, value)
            }
            func source(_ text: String) -> EncryptedFieldMapping.Source {
                if text == "$aggregate_id" || text == "$stream_id" { return .aggregateID }
                if text.hasPrefix("$payload.") { return .payload(text.dropFirst("$payload.".count).split(separator: ".").map(String.init)) }
                return .literal(text)
            }
            let (field, fieldNode) = try required("field")
            let path = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else { throw reader.error("\(at).field", fieldNode, "expected a dotted path of keys, e.g. customer.email") }
            let (scope, _) = try required("scope")
            let (scopeID, _) = try required("scope_id")
            let (version, versionNode) = try required("key_version")
            let keyVersion = source(version)
            if case .literal(let text) = keyVersion, (Int(text) ?? 0) < 1 {
                throw reader.error("\(at).key_version", versionNode, "expected $payload.PATH or a whole number from 1, found '\(text)'")
            }
            var plaintext = EncryptedFieldMapping.Plaintext.string
            if let value = keys["plaintext"] {
                let text = try reader.string(value, at: "\(at).plaintext")
                guard let parsed = EncryptedFieldMapping.Plaintext(rawValue: text) else {
                    throw reader.error("\(at).plaintext", value, "expected string or json, found '\(text)'")
                }
                plaintext = parsed
            }
            return EncryptedFieldMapping(field: path, scope: scope, scopeID: source(scopeID), keyVersion: keyVersion, plaintext: plaintext)
        }
    }

    /// Loads the system keys.
    /// - Throws: `ConfigurationError` naming the key file (or directory) and what to do; it never
    ///   carries key material.
    public func keyring() throws -> SystemKeyring {
        guard let encryption = self.encryption else {
            throw ConfigurationError(file: self.file, keyPath: "encryption", message: "not configured: add encryption.system_keys and encryption.active_key")
        }
        do {
            switch encryption.systemKeys {
            case .directory(let path): return try SystemKeyring.load(directory: path, activeKeyID: encryption.activeKey)
            case .files(let paths): return try SystemKeyring.load(files: paths, activeKeyID: encryption.activeKey)
            }
        } catch {
            let key = if case .activeKeyMissing = error { "encryption.active_key" } else { "encryption.system_keys" }
            throw ConfigurationError(file: self.file, keyPath: key, message: error.description)
        }
    }

    /// The key store over the configured keyring and table.
    public func keyStore() throws -> KeyStore {
        KeyStore(keyring: try self.keyring(), table: self.encryption?.keysTable ?? KeyStore.defaultTable)
    }

    /// What the projections with `decrypt: true` decrypt with: keys checked in each batch's own
    /// transaction (a destroyed key is never used again), unwrapped keys cached.
    public func payloadDecryptor() throws -> PayloadDecryptor? {
        guard let encryption = self.encryption else { return nil }
        return PayloadDecryptor(
            keyStore: try self.keyStore(),
            cache: KeyCache(.init(maximumEntries: encryption.keyCacheSize, entryLifetime: encryption.keyCacheLifetime)),
            freshness: .checkedEachCall)
    }
}
