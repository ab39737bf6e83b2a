import Foundation

/// Where an `{"$encrypted": ...}` object sits in a JSON document.
struct EncryptedFieldLocation {
    /// The whole object, braces included.
    var range: Range<Int>
    /// The value of its `$encrypted` member.
    var bodyRange: Range<Int>
    /// JSON Pointer (RFC 6901) of the object, e.g. `/customer/email`; "" for the whole document.
    var path: String
}

/// Validates a JSON document in one pass and finds its `$encrypted` objects (the key written
/// literally, as every JSON encoder writes it), so they can be replaced in place while every
/// other byte of the payload stays as it was. Errors give byte offsets, never content.
struct JSONScanner {
    static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var path: [PathStep] = []
    private var fields: [EncryptedFieldLocation] = []

    private enum PathStep {
        case key(Range<Int>)  // the member name, quotes included
        case index(Int)
    }

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The `$encrypted` objects of `bytes`, in document order.
    /// - Throws: `EncryptionError.invalidJSON` when `bytes` is not one JSON value,
    ///   `.malformedField` for an `$encrypted` member beside other members.
    static func encryptedFields(in bytes: UnsafeBufferPointer<UInt8>) throws -> [EncryptedFieldLocation] {
        var scanner = JSONScanner(bytes)
        try scanner.document()
        return scanner.fields
    }

    /// Whether `bytes` is one JSON value.
    static func isJSON(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var scanner = JSONScanner(bytes)
        return (try? scanner.document()) != nil
    }

    private mutating func document() throws {
        self.skipWhitespace()
        try self.value(depth: 0)
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw self.invalid("unexpected bytes after the JSON value") }
    }

    private var peek: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    private func invalid(_ what: String) -> EncryptionError {
        EncryptionError(.invalidJSON, "not JSON: \(what) at byte \(self.index)")
    }

    private mutating func skipWhitespace() {
        while let byte = self.peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { self.index += 1 }
    }

    private mutating func value(depth: Int) throws {
        guard depth < Self.maximumDepth else { throw self.invalid("nesting deeper than \(Self.maximumDepth)") }
        guard let byte = self.peek else { throw self.invalid("unexpected end") }
        switch byte {
        case UInt8(ascii: "{"): try self.object(depth: depth)
        case UInt8(ascii: "["): try self.array(depth: depth)
        case UInt8(ascii: "\""): _ = try self.string()
        case UInt8(ascii: "t"): try self.literal("true")
        case UInt8(ascii: "f"): try self.literal("false")
        case UInt8(ascii: "n"): try self.literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try self.number()
        default: throw self.invalid("unexpected character")
        }
    }

    private static let markerKey = Array("\"\(EncryptedField.marker)\"".utf8)

    private mutating func object(depth: Int) throws {
        let start = self.index
        let fieldsBefore = self.fields.count
        self.index += 1
        self.skipWhitespace()
        if self.peek == UInt8(ascii: "}") {
            self.index += 1
            return
        }
        var members = 0
        var body: Range<Int>?
        while true {
            guard self.peek == UInt8(ascii: "\"") else { throw self.invalid("expected a member name") }
            let key = try self.string()
            self.skipWhitespace()
            guard self.peek == UInt8(ascii: ":") else { throw self.invalid("expected ':'") }
            self.index += 1
            self.skipWhitespace()
            self.path.append(.key(key))
            let valueStart = self.index
            try self.value(depth: depth + 1)
            self.path.removeLast()
            members += 1
            if self.bytes[key].elementsEqual(Self.markerKey) { body = valueStart..<self.index }
            self.skipWhitespace()
            switch self.peek {
            case UInt8(ascii: ","):
                self.index += 1
                self.skipWhitespace()
            case UInt8(ascii: "}"):
                self.index += 1
                if let body {
                    guard members == 1 else {
                        throw EncryptionError(
                            .malformedField,
                            "the object at '\(self.pointer())' has \"\(EncryptedField.marker)\" beside other members: "
                                + "an encrypted field is an object with that one member")
                    }
                    self.fields.removeSubrange(fieldsBefore...)  // nothing inside it is a field of the payload
                    self.fields.append(EncryptedFieldLocation(range: start..<self.index, bodyRange: body, path: self.pointer()))
                }
                return
            default: throw self.invalid("expected ',' or '}'")
            }
        }
    }

    private mutating func array(depth: Int) throws {
        self.index += 1
        self.skipWhitespace()
        if self.peek == UInt8(ascii: "]") {
            self.index += 1
            return
        }
        var position = 0
        while true {
            self.path.append(.index(position))
            try self.value(depth: depth + 1)
            self.path.removeLast()
            position += 1
            self.skipWhitespace()
            switch self.peek {
            case UInt8(ascii: ","):
                self.index += 1
                self.skipWhitespace()
            case UInt8(ascii: "]"):
                self.index += 1
                return
            default: throw self.invalid("expected ',' or ']'")
            }
        }
    }

    /// - Returns: the string's range, quotes included.
    private mutating func string() throws -> Range<Int> {
        let start = self.index
        self.index += 1
        while let byte = self.peek {
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                return start..<self.index
            case UInt8(ascii: "\\"):
                self.index += 1
                switch self.peek {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    self.index += 1
                case UInt8(ascii: "u"):
                    self.index += 1
                    for _ in 0..<4 {
                        guard let digit = self.peek, Self.isHexDigit(digit) else { throw self.invalid("bad \\u escape") }
                        self.index += 1
                    }
                default: throw self.invalid("bad escape")
                }
            case 0..<0x20: throw self.invalid("control character in a string")
            default: self.index += 1
            }
        }
        throw self.invalid("unterminated string")
    }

    private mutating func number() throws {
        if self.peek == UInt8(ascii: "-") { self.index += 1 }
        guard self.peek.map(Self.isDigit) == true else { throw self.invalid("expected a digit") }
        if self.peek == UInt8(ascii: "0") { self.index += 1 } else { self.digits() }
        if self.peek == UInt8(ascii: ".") {
            self.index += 1
            guard self.peek.map(Self.isDigit) == true else { throw self.invalid("expected a digit") }
            self.digits()
        }
        if self.peek == UInt8(ascii: "e") || self.peek == UInt8(ascii: "E") {
            self.index += 1
            if self.peek == UInt8(ascii: "+") || self.peek == UInt8(ascii: "-") { self.index += 1 }
            guard self.peek.map(Self.isDigit) == true else { throw self.invalid("expected a digit") }
            self.digits()
        }
    }

    private mutating func digits() {
        while let byte = self.peek, Self.isDigit(byte) { self.index += 1 }
    }

    private mutating func literal(_ word: String) throws {
        for expected in word.utf8 {
            guard self.peek == expected else { throw self.invalid("unknown literal") }
            self.index += 1
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        Self.isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    /// The JSON Pointer of the current position.
    private func pointer() -> String {
        self.path.map { step in
            switch step {
            case .index(let position): return "/\(position)"
            case .key(let range):
                let name = JSONText.decodeString(UnsafeBufferPointer(rebasing: self.bytes[range]))
                return "/" + name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
            }
        }.joined()
    }
}
