import Foundation

/// A Swift type a result value can be decoded into, from the text or the binary format.
public protocol PostgresDecodable {
    init(cell: PostgresCell) throws
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(cell: PostgresCell) throws {
        self = cell.bytes == nil ? nil : try Wrapped(cell: cell)
    }
}

extension Int64: PostgresDecodable {
    public init(cell: PostgresCell) throws {
        let bytes = try cell.required("Int64")
        if cell.isBinary {
            switch cell.oid {
            case PostgresType.int2, PostgresType.int4, PostgresType.int8, PostgresType.oid, PostgresType.xid8:
                guard let value = cell.bigEndianInteger(bytes) else { throw cell.failure("bad integer length") }
                self = value
            case PostgresType.numeric:
                guard let value = Int64(try PostgresNumeric.decode(bytes, cell: cell)) else {
                    throw cell.failure("numeric is not an integer in Int64's range")
                }
                self = value
            default: throw cell.failure("not an integer type")
            }
        } else {
            guard let value = Int64(cell.text) else { throw cell.failure("'\(cell.text)' is not an integer") }
            self = value
        }
    }
}

extension Int: PostgresDecodable {
    public init(cell: PostgresCell) throws { self = Int(try Int64(cell: cell)) }
}

extension Int32: PostgresDecodable {
    public init(cell: PostgresCell) throws {
        guard let value = Int32(exactly: try Int64(cell: cell)) else { throw cell.failure("out of Int32's range") }
        self = value
    }
}

extension Int16: PostgresDecodable {
    public init(cell: PostgresCell) throws {
        guard let value = Int16(exactly: try Int64(cell: cell)) else { throw cell.failure("out of Int16's range") }
        self = value
    }
}

extension Bool: PostgresDecodable {
    public init(cell: PostgresCell) throws {
        let bytes = try cell.required("Bool")
        if cell.isBinary {
            guard cell.oid == PostgresType.bool, bytes.count == 1 else { throw cell.failure("not a boolean") }
            self = bytes[0] != 0
        } else {
            switch cell.text {
            case "t", "true": self = true
            case "f", "false": self = false
            default: throw cell.failure("'\(cell.text)' is not a boolean")
            }
        }
    }
}

extension Double: PostgresDecodable {
    public init(cell: PostgresCell) throws {
        let bytes = try cell.required("Double")
        guard cell.isBinary else {
            guard let value = Double(cell.text) else { throw cell.failure("'\(cell.text)' is not a number") }
            self = value
            return
        }
        switch cell.oid {
        case PostgresType.float8:
            self = Double(bitPattern: UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)))
        case PostgresType.float4:
            self = Double(Float(bitPattern: UInt32(bigEndian: bytes.loadUnaligned(as: UInt32.self))))
        case PostgresType.numeric:
            guard let value = Double(try PostgresNumeric.decode(bytes, cell: cell)) else {
                throw cell.failure("numeric out of Double's range")
            }
            self = value
        default:
            guard let value = cell.bigEndianInteger(bytes) else { throw cell.failure("not a number type") }
            self = Double(value)
        }
    }
}

extension String: PostgresDecodable {
    /// Text-like types; `jsonb` in binary loses its version byte; `numeric` and `uuid` become their text form.
    public init(cell: PostgresCell) throws {
        let bytes = try cell.required("String")
        guard cell.isBinary else {
            self = cell.text
            return
        }
        switch cell.oid {
        case PostgresType.jsonb:
            guard bytes.first == 1 else { throw cell.failure("unknown jsonb version") }
            self = String(decoding: UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), as: UTF8.self)
        case PostgresType.numeric:
            self = try PostgresNumeric.decode(bytes, cell: cell)
        case PostgresType.uuid:
            self = try UUID(cell: cell).uuidString.lowercased()
        case PostgresType.int2, PostgresType.int4, PostgresType.int8:
            self = String(try Int64(cell: cell))
        case PostgresType.bytea, PostgresType.bool, PostgresType.float4, PostgresType.float8,
            PostgresType.timestamptz, PostgresType.timestamp:
            throw cell.failure("binary value of this type is not text; decode its own Swift type")
        default:
            self = cell.text
        }
    }
}

extension [UInt8]: PostgresDecodable {
    /// `bytea` (binary, or text in hex form); any other type gives its raw bytes (`json` text, `jsonb` text).
    public init(cell: PostgresCell) throws {
        let bytes = try cell.required("[UInt8]")
        if cell.isBinary {
            self = cell.oid == PostgresType.jsonb ? Array(bytes.dropFirst()) : Array(bytes)
        } else if cell.oid == PostgresType.bytea {
            self = try PostgresCell.decodeHexBytea(bytes, cell: cell)
        } else {
            self = Array(bytes)
        }
    }
}

extension Data: PostgresDecodable {
    public init(cell: PostgresCell) throws { self = Data(try [UInt8](cell: cell)) }
}

extension UUID: PostgresDecodable {
    public init(cell: PostgresCell) throws {
        let bytes = try cell.required("UUID")
        if cell.isBinary {
            guard bytes.count == 16 else { throw cell.failure("a uuid has 16 bytes") }
            self = UUID(uuid: bytes.loadUnaligned(as: uuid_t.self))
        } else {
            guard let value = UUID(uuidString: cell.text) else { throw cell.failure("'\(cell.text)' is not a uuid") }
            self = value
        }
    }
}

extension Date: PostgresDecodable {
    /// `timestamptz` (or `timestamp`, read as UTC), through `PostgresTimestamp`: within a fraction of
    /// a microsecond. Decode `PostgresTimestamp` to keep the stored value exactly.
    public init(cell: PostgresCell) throws { self = try PostgresTimestamp(cell: cell).date }
}

extension PostgresCell {
    static func decodeHexBytea(_ bytes: UnsafeRawBufferPointer, cell: PostgresCell) throws -> [UInt8] {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x") else {
            throw cell.failure("bytea text is not in hex format")
        }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw cell.failure("bad hex digit in bytea")
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count - 2) / 2)
        var index = 2
        while index + 1 < bytes.count {
            out.append(try nibble(bytes[index]) << 4 | nibble(bytes[index + 1]))
            index += 2
        }
        return out
    }
}

/// Binary `numeric` to its exact decimal text.
enum PostgresNumeric {
    static func decode(_ bytes: UnsafeRawBufferPointer, cell: PostgresCell) throws -> String {
        guard bytes.count >= 8 else { throw cell.failure("numeric too short") }
        func int16(_ offset: Int) -> Int { Int(Int16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int16.self))) }
        let count = int16(0)
        let weight = int16(2)
        let sign = UInt16(truncatingIfNeeded: int16(4))
        let scale = int16(6)
        guard bytes.count >= 8 + count * 2 else { throw cell.failure("numeric truncated") }
        if sign == 0xC000 { return "NaN" }
        if sign == 0xD000 { return "Infinity" }
        if sign == 0xF000 { return "-Infinity" }
        let digits = (0..<count).map { int16(8 + $0 * 2) }
        var integer = ""
        if weight < 0 {
            integer = "0"
        } else {
            for group in 0...weight {
                let value = group < digits.count ? digits[group] : 0
                integer += group == 0 ? String(value) : String(repeating: "0", count: 4 - String(value).count) + String(value)
            }
        }
        var fraction = ""
        if scale > 0 {
            var group = weight + 1
            while fraction.count < scale {
                let value = group >= 0 && group < digits.count ? digits[group] : 0
                fraction += String(repeating: "0", count: 4 - String(value).count) + String(value)
                group += 1
            }
            fraction = String(fraction.prefix(scale))
        }
        let text = scale > 0 ? "\(integer).\(fraction)" : integer
        return sign == 0x4000 ? "-" + text : text
    }
}
