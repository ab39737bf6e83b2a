import Foundation

/// One bound statement parameter: its type OID (0 lets the server infer it), its format and
/// its bytes (nil is SQL NULL). Values are always bound, never spliced into SQL text.
public struct PostgresParameter: Sendable, Hashable {
    public enum Format: Int32, Sendable { case text = 0, binary = 1 }
    public var oid: UInt32
    public var format: Format
    public var bytes: [UInt8]?

    public init(oid: UInt32, format: Format, bytes: [UInt8]?) {
        self.oid = oid
        self.format = format
        self.bytes = bytes
    }

    /// SQL NULL of an unspecified type.
    public static let null = PostgresParameter(oid: 0, format: .text, bytes: nil)
}

/// A Swift value that can be bound as a statement parameter.
public protocol PostgresEncodable: Sendable {
    var postgresParameter: PostgresParameter { get }
}

extension PostgresParameter: PostgresEncodable {
    public var postgresParameter: PostgresParameter { self }
}

extension Int64: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.int8, format: .binary, bytes: withUnsafeBytes(of: self.bigEndian, Array.init))
    }
}

extension Int: PostgresEncodable {
    public var postgresParameter: PostgresParameter { Int64(self).postgresParameter }
}

extension Int32: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.int4, format: .binary, bytes: withUnsafeBytes(of: self.bigEndian, Array.init))
    }
}

extension Int16: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.int2, format: .binary, bytes: withUnsafeBytes(of: self.bigEndian, Array.init))
    }
}

extension Bool: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.bool, format: .binary, bytes: [self ? 1 : 0])
    }
}

extension Double: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(
            oid: PostgresType.float8, format: .binary, bytes: withUnsafeBytes(of: self.bitPattern.bigEndian, Array.init))
    }
}

extension String: PostgresEncodable {
    /// Text with OID 0, so the server infers the type from context (a `text`, `varchar` or
    /// `jsonb` column all accept it).
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: 0, format: .text, bytes: Array(self.utf8))
    }
}

extension Data: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.bytea, format: .binary, bytes: Array(self))
    }
}

extension [UInt8]: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.bytea, format: .binary, bytes: self)
    }
}

extension UUID: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.uuid, format: .binary, bytes: withUnsafeBytes(of: self.uuid, Array.init))
    }
}

extension Date: PostgresEncodable {
    /// Binary `timestamptz`: the nearest microsecond (`PostgresTimestamp(date)`).
    public var postgresParameter: PostgresParameter { PostgresTimestamp(self).postgresParameter }
}

/// JSON text bound as `jsonb`.
public struct PostgresJSON: PostgresEncodable, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init(bytes: some Sequence<UInt8>) { self.text = String(decoding: Array(bytes), as: UTF8.self) }
    public var postgresParameter: PostgresParameter {
        PostgresParameter(oid: PostgresType.jsonb, format: .text, bytes: Array(self.text.utf8))
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresParameter: PostgresParameter {
        switch self {
        case .none: .null
        case .some(let value): value.postgresParameter
        }
    }
}

/// OIDs of the built-in types this module encodes and decodes.
public enum PostgresType {
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let name: UInt32 = 19
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let oid: UInt32 = 26
    public static let json: UInt32 = 114
    public static let float4: UInt32 = 700
    public static let float8: UInt32 = 701
    public static let unknown: UInt32 = 705
    public static let bpchar: UInt32 = 1042
    public static let varchar: UInt32 = 1043
    public static let timestamp: UInt32 = 1114
    public static let timestamptz: UInt32 = 1184
    public static let numeric: UInt32 = 1700
    public static let uuid: UInt32 = 2950
    public static let jsonb: UInt32 = 3802
    public static let xid8: UInt32 = 5069
}

/// A `text[]` parameter, e.g. for `aggregate_type = ANY($1::text[])`.
public struct PostgresTextArray: PostgresEncodable, Hashable {
    public var elements: [String]
    public init(_ elements: [String]) { self.elements = elements }
    public var postgresParameter: PostgresParameter {
        // Array literal: every element double-quoted, with `"` and `\` backslash-escaped.
        let body = self.elements.map { element in
            "\"" + element.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }.joined(separator: ",")
        return PostgresParameter(oid: PostgresType.textArray, format: .text, bytes: Array("{\(body)}".utf8))
    }
}

extension PostgresType {
    public static let textArray: UInt32 = 1009
}
