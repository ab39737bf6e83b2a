/// A configuration the daemon refuses to start with (exit 78). The message names the file, the
/// key path and, where known, the line.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var keyPath: String?
    public var line: Int?
    public var message: String

    public init(file: String, keyPath: String? = nil, line: Int? = nil, message: String) {
        self.file = file
        self.keyPath = keyPath
        self.line = line
        self.message = message
    }

    public var description: String {
        var location = self.file
        if let line { location += ":\(line)" }
        if let keyPath, !keyPath.isEmpty { return "\(location): \(keyPath): \(self.message)" }
        return "\(location): \(self.message)"
    }
}
