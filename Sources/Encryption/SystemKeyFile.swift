import Crypto
import Foundation

/// Reads one system key file: owner-only permissions, then the base64 (standard alphabet,
/// surrounding whitespace ignored) of exactly 32 bytes.
enum SystemKeyFile {
    /// The key id a file stands for: its name without a trailing `.key`.
    static func keyID(forPath path: String) -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return name.hasSuffix(".key") ? String(name.dropLast(4)) : name
    }

    static func read(_ path: String) throws(KeyringError) -> SymmetricKey {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw .unreadableFile(path: path, reason: Self.reason(error))
        }
        if let type = attributes[.type] as? FileAttributeType, type == .typeDirectory {
            throw .unreadableFile(path: path, reason: "it is a directory")
        }
        let mode = UInt16(truncatingIfNeeded: (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0)
        guard mode & 0o077 == 0 else { throw .insecurePermissions(path: path, mode: mode & 0o7777) }
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadableFile(path: path, reason: Self.reason(error))
        }
        let text = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Data(base64Encoded: text) else { throw .notBase64(path: path) }
        guard bytes.count == 32 else { throw .wrongKeySize(path: path, byteCount: bytes.count) }
        return SymmetricKey(data: bytes)
    }

    /// The system's reason, without anything read from the file.
    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
        switch nsError.code {
        case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "no such file"
        case NSFileReadNoPermissionError: return "permission denied"
        default: return "error \(nsError.code)"
        }
    }
}
