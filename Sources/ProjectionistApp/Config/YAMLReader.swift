import Yams

/// Walks a YAML node tree strictly: every key must be known, every value of the right type,
/// and every error names the file, the key path and the line.
struct YAMLReader {
    let file: String

    func error(_ path: String, _ node: Node?, _ message: String) -> ConfigurationError {
        ConfigurationError(file: self.file, keyPath: path, line: node?.mark.map(\.line), message: message)
    }

    /// The mapping's entries by key; refuses unknown and duplicate keys.
    func mapping(_ node: Node, at path: String, allowed: [String]) throws -> [String: Node] {
        guard case .mapping(let mapping) = node else {
            throw self.error(path, node, "expected a mapping of keys (\(allowed.joined(separator: ", ")))")
        }
        var entries: [String: Node] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else { throw self.error(path, key, "keys must be plain strings") }
            let name = scalar.string
            let keyPath = path.isEmpty ? name : "\(path).\(name)"
            guard allowed.contains(name) else {
                throw self.error(keyPath, key, "unknown key; expected one of: \(allowed.joined(separator: ", "))")
            }
            guard entries[name] == nil else { throw self.error(keyPath, key, "duplicate key") }
            entries[name] = value
        }
        return entries
    }

    func isNull(_ node: Node) -> Bool {
        if case .scalar(let scalar) = node { return scalar.tag.description == Tag.Name.null.rawValue || (scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)) }
        return false
    }

    func string(_ node: Node, at path: String) throws -> String {
        guard case .scalar(let scalar) = node else { throw self.error(path, node, "expected a string") }
        return scalar.string
    }

    func bool(_ node: Node, at path: String) throws -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else {
            throw self.error(path, node, "expected true or false")
        }
        switch scalar.string {
        case "true", "True", "TRUE", "yes": return true
        case "false", "False", "FALSE", "no": return false
        default: throw self.error(path, node, "expected true or false, found '\(scalar.string)'")
        }
    }

    /// A whole number within `bounds` (a number too large to represent is out of them too).
    func integer(_ node: Node, at path: String, in bounds: ClosedRange<Int>, why: String = "") throws -> Int {
        guard case .scalar(let scalar) = node, scalar.style == .plain, scalar.string.allSatisfy({ $0.isASCII && $0.isNumber }),
            !scalar.string.isEmpty
        else {
            throw self.error(path, node, "expected a positive whole number")
        }
        guard let value = Int(scalar.string), bounds.contains(value) else {
            guard let value = Int(scalar.string), value < bounds.lowerBound else {
                throw self.error(path, node, "\(scalar.string) is too large: at most \(bounds.upperBound)\(why)")
            }
            throw self.error(path, node, bounds.lowerBound == 1 && value <= 0 ? "expected a positive whole number" : "\(value) is too small: at least \(bounds.lowerBound)\(why)")
        }
        return value
    }

    func duration(_ node: Node, at path: String) throws -> Duration {
        let text = try self.string(node, at: path)
        guard let duration = DurationParser.parse(text) else {
            throw self.error(path, node, "'\(text)' is not a duration; write e.g. 250ms, 1s, 5m or 1h")
        }
        return duration
    }

    /// A duration within `bounds`; `why` (", because ...") follows the bound in the message.
    func duration(_ node: Node, at path: String, in bounds: ClosedRange<Duration>, why: String = "") throws -> Duration {
        let text = try self.string(node, at: path)
        let range = "at least \(DurationParser.format(bounds.lowerBound)) and at most \(DurationParser.format(bounds.upperBound))"
        guard let duration = DurationParser.parse(text) else {
            if DurationParser.isWellFormed(text) { throw self.error(path, node, "'\(text)' is too long: it must be \(range)\(why)") }
            throw self.error(path, node, "'\(text)' is not a duration; write e.g. 250ms, 1s, 5m or 1h")
        }
        guard bounds.contains(duration) else { throw self.error(path, node, "'\(text)' is out of range: it must be \(range)\(why)") }
        return duration
    }

    func sequence(_ node: Node, at path: String) throws -> [Node] {
        guard case .sequence(let sequence) = node else { throw self.error(path, node, "expected a list") }
        return Array(sequence)
    }

    /// A string, or a list of strings (e.g. a handler's statements).
    func stringOrList(_ node: Node, at path: String) throws -> [String] {
        if case .sequence(let sequence) = node {
            return try sequence.enumerated().map { try self.string($0.element, at: "\(path)[\($0.offset)]") }
        }
        return [try self.string(node, at: path)]
    }
}
