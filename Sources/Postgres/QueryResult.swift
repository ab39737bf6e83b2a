import CLibPQ

/// The rows of one statement. Owns the `PGresult`; reading it is safe from any thread because
/// libpq never mutates a result after handing it out.
public final class QueryResult: @unchecked Sendable, RandomAccessCollection {
    let handle: OpaquePointer  // PGresult *
    public let rowCount: Int
    public let columnCount: Int

    init(taking handle: OpaquePointer) {
        self.handle = handle
        self.rowCount = Int(PQntuples(handle))
        self.columnCount = Int(PQnfields(handle))
    }

    deinit { PQclear(self.handle) }

    /// Rows changed by INSERT/UPDATE/DELETE (0 for other statements).
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(self.handle))) ?? 0 }

    /// The command tag, e.g. `INSERT 0 1`.
    public var commandTag: String { String(cString: PQcmdStatus(self.handle)) }

    public func columnName(_ column: Int) -> String { String(cString: PQfname(self.handle, Int32(column))) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { self.rowCount }
    public subscript(position: Int) -> Row { Row(result: self, index: position) }
}

/// One row of a `QueryResult`; values are decoded on access.
public struct Row: Sendable {
    let result: QueryResult
    public let index: Int

    /// The raw cell at `column` (0-based).
    public func cell(_ column: Int) -> PostgresCell {
        let handle = self.result.handle
        let row = Int32(self.index)
        let col = Int32(column)
        precondition(column >= 0 && column < self.result.columnCount, "column \(column) out of range")
        let isNull = PQgetisnull(handle, row, col) == 1
        let bytes: UnsafeRawBufferPointer? =
            isNull
            ? nil
            : UnsafeRawBufferPointer(start: PQgetvalue(handle, row, col), count: Int(PQgetlength(handle, row, col)))
        return PostgresCell(
            bytes: bytes, oid: PQftype(handle, col), isBinary: PQfformat(handle, col) == 1, column: column,
            owner: self.result)
    }

    /// Decodes column `column` as `T`; a NULL decodes only into an `Optional`.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at column: Int) throws -> T {
        try T(cell: self.cell(column))
    }

    /// The column's value, or nil for NULL.
    public subscript<T: PostgresDecodable>(column: Int, as type: T.Type = T.self) -> T? {
        get throws {
            let cell = self.cell(column)
            if cell.bytes == nil { return nil }
            return try T(cell: cell)
        }
    }
}

/// A view of one value inside a result; valid while `owner` lives (a `Row` keeps it alive).
public struct PostgresCell {
    /// nil for SQL NULL.
    public let bytes: UnsafeRawBufferPointer?
    public let oid: UInt32
    public let isBinary: Bool
    public let column: Int
    let owner: QueryResult

    func failure(_ what: String) -> PostgresError {
        PostgresError(code: .decoding, message: "column \(self.column) (type oid \(self.oid)): \(what)")
    }

    /// The bytes, or a decoding error for NULL.
    func required(_ typeName: String) throws -> UnsafeRawBufferPointer {
        guard let bytes else { throw self.failure("NULL cannot be decoded as \(typeName); decode an Optional") }
        return bytes
    }

    var text: String { self.bytes.map { String(decoding: $0, as: UTF8.self) } ?? "" }

    func bigEndianInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        switch bytes.count {
        case 2: Int64(Int16(bigEndian: bytes.loadUnaligned(as: Int16.self)))
        case 4: Int64(Int32(bigEndian: bytes.loadUnaligned(as: Int32.self)))
        case 8: Int64(bigEndian: bytes.loadUnaligned(as: Int64.self))
        default: nil
        }
    }
}
