/// A system keyring that could not be loaded. Each case names the file (or key id) and what to
/// do; none carries key material, so the description is safe to log.
public enum KeyringError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The key file is not there or cannot be read.
    case unreadableFile(path: String, reason: String)
    /// The file is readable by its group or by others (`mode` holds its permission bits).
    case insecurePermissions(path: String, mode: UInt16)
    /// The file's content, trimmed of whitespace, is not standard base64.
    case notBase64(path: String)
    /// The file decodes to `byteCount` bytes instead of 32.
    case wrongKeySize(path: String, byteCount: Int)
    /// The file's name gives no key id (e.g. a file named only `.key`).
    case invalidKeyID(path: String)
    /// Two files give the same key id.
    case duplicateKeyID(id: String, paths: [String])
    /// The directory has no `<id>.key` file.
    case emptyDirectory(path: String)
    /// The directory is not there or cannot be listed.
    case unreadableDirectory(path: String, reason: String)
    /// The active key id is not among the loaded keys.
    case activeKeyMissing(id: String, available: [String])

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            "system key file \(path) cannot be read (\(reason)): check the path and that the service user may read it"
        case .insecurePermissions(let path, let mode):
            "system key file \(path) has mode \(String(mode, radix: 8)), readable by group or others: "
                + "run `chmod 600 \(path)` (owner read/write only)"
        case .notBase64(let path):
            "system key file \(path) is not standard base64: it must hold the base64 of 32 random bytes, "
                + "e.g. from `head -c 32 /dev/urandom | base64`"
        case .wrongKeySize(let path, let byteCount):
            "system key file \(path) decodes to \(byteCount) bytes, not 32: write the base64 of exactly 32 random bytes "
                + "(`head -c 32 /dev/urandom | base64`)"
        case .invalidKeyID(let path):
            "system key file \(path) gives no key id: name it <id>.key, e.g. 2025-01.key"
        case .duplicateKeyID(let id, let paths):
            "system key id '\(id)' comes from more than one file (\(paths.joined(separator: ", "))): keep one"
        case .emptyDirectory(let path):
            "system key directory \(path) has no <id>.key file: add the key files (base64 of 32 bytes, mode 600)"
        case .unreadableDirectory(let path, let reason):
            "system key directory \(path) cannot be listed (\(reason)): check the path and its permissions"
        case .activeKeyMissing(let id, let available):
            "active system key '\(id)' is not among the loaded keys "
                + "(\(available.isEmpty ? "none" : available.joined(separator: ", "))): "
                + "add \(id).key or set the active key to one of them"
        }
    }
}
