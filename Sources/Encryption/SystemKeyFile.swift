import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads one system key file: owner-only permissions, then the base64 (standard alphabet,
/// surrounding whitespace ignored) of exactly 32 bytes.
enum SystemKeyFile {
    /// The key id a file stands for: its name without a trailing `.key`.
    static func keyID(forPath path: String) -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return name.hasSuffix(".key") ? String(name.dropLast(4)) : name
    }

    static func read(_ path: String) throws(KeyringError) -> SymmetricKey {
        // stat, not lstat: a symlinked key file (e.g. a mounted secret) is judged by its target.
        var info = stat()
        guard stat(path, &info) == 0 else { throw .unreadableFile(path: path, reason: Self.reason(errno)) }
        guard info.st_mode & S_IFMT != S_IFDIR else { throw .unreadableFile(path: path, reason: "it is a directory") }
        let mode = UInt16(truncatingIfNeeded: info.st_mode & 0o7777)
        guard mode & 0o077 == 0 else { throw .insecurePermissions(path: path, mode: mode) }
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(path: path, reason: access(path, R_OK) == 0 ? "read failed" : Self.reason(errno))
        }
        let text = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Data(base64Encoded: text) else { throw .notBase64(path: path) }
        guard bytes.count == 32 else { throw .wrongKeySize(path: path, byteCount: bytes.count) }
        return SymmetricKey(data: bytes)
    }

    /// The system's reason for `code`, e.g. "No such file or directory".
    private static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
}
