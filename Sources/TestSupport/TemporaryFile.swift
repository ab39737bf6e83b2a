import Foundation

/// Files in the temporary directory, e.g. configurations written by a test.
public enum TemporaryFile {
    /// Writes `text` to a new file. - Returns: its path.
    public static func write(_ text: String, name: String = "projectionist-\(UUID()).yaml") -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Removes a file or directory, if it is there.
    public static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}
