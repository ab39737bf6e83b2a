import Foundation

/// Temporary files for configuration tests.
enum FileManagerHelper {
    static func write(_ text: String, name: String = "projectionist-\(UUID()).yaml") -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}
