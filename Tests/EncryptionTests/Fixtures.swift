import Crypto
import Encryption
import Foundation
import Postgres
import TestSupport

/// Key files, keyrings, databases with the key table, and Python as the independent implementation.
enum Fixtures {
    /// A new temporary directory.
    static func directory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID())").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `contents` to `directory/name` with `mode`. - Returns: the path.
    @discardableResult
    static func writeFile(_ directory: String, _ name: String, _ contents: String, mode: Int = 0o600) -> String {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        try! contents.write(toFile: path, atomically: false, encoding: .utf8)
        try! FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// The base64 of `count` random bytes.
    static func randomBase64(_ count: Int = 32) -> String {
        Data((0..<count).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    }

    static func base64(_ key: SymmetricKey) -> String { key.withUnsafeBytes { Data($0).base64EncodedString() } }

    /// A keyring of new random keys with these ids.
    static func keyring(_ ids: [String], active: String) throws -> (SystemKeyring, [String: SymmetricKey]) {
        var keys: [String: SymmetricKey] = [:]
        for id in ids { keys[id] = SymmetricKey(size: .bits256) }
        return (try SystemKeyring(keys: keys, activeKeyID: active), keys)
    }

    /// A fresh database with the key table at `table` migrated.
    static func database(table: QualifiedName = KeyStore.defaultTable) async throws -> (TestDatabase, PostgresConnection) {
        let database = try await TestDatabase.fresh("encryption")
        let connection = try await database.connect()
        try await connection.execute(script: KeyStore.migrationSQL(table: table))
        return (database, connection)
    }

    /// Runs the Python helper (the `cryptography` package's AESGCM, the `hmac` module).
    static func python(_ arguments: String...) async throws -> String {
        let run = try await Shell.run(["python3", "-c", self.pythonHelper] + arguments)
        guard run.status == 0 else {
            throw EncryptionError(.invalidArgument, "python3 failed (\(run.status)): \(run.output)")
        }
        return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static let pythonHelper = """
        import base64, hashlib, hmac, os, sys
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        b = base64.b64decode
        mode, args = sys.argv[1], sys.argv[2:]
        if mode == "open":  # key, [nonce][ct][tag] -> plaintext (all base64)
            key, sealed = b(args[0]), b(args[1])
            print(base64.b64encode(AESGCM(key).decrypt(sealed[:12], sealed[12:], None)).decode())
        elif mode == "seal":  # key, plaintext -> [nonce][ct][tag] (all base64)
            key, plaintext = b(args[0]), b(args[1])
            nonce = os.urandom(12)
            print(base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, None)).decode())
        elif mode == "newkey":  # -> a new AES-256 key (base64)
            print(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
        elif mode == "hmac":  # key (base64), text -> lowercase hex HMAC-SHA256
            print(hmac.new(b(args[0]), args[1].encode("utf-8"), hashlib.sha256).hexdigest())
        """
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}
