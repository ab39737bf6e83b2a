import Foundation

/// A table or sequence name, optionally schema-qualified, always quoted when written into SQL.
///
/// Configurable names are identifiers, never values, so they cannot be bound as parameters;
/// quoting is what keeps them from being SQL.
public struct QualifiedName: Sendable, Hashable, CustomStringConvertible {
    public var schema: String?
    public var name: String

    public init(schema: String? = nil, name: String) {
        self.schema = schema
        self.name = name
    }

    /// Parses `table` or `schema.table`. Names are taken literally (case kept), so `Events`
    /// and `events` are different tables, as with quoted identifiers in SQL.
    /// - Throws: `PostgresError` `.usage` for an empty part, more than one dot, or a NUL byte.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && !$0.contains("\0") }),
            parts.allSatisfy({ $0.utf8.count <= 63 })
        else {
            throw PostgresError(
                code: .usage,
                message: "'\(text)' is not a table name: use name or schema.name, each part 1 to 63 bytes")
        }
        self.schema = parts.count == 2 ? parts[0] : nil
        self.name = parts[parts.count - 1]
    }

    /// The quoted form for SQL: `"schema"."name"` or `"name"`.
    public var quoted: String {
        (self.schema.map { Self.quoteIdentifier($0) + "." } ?? "") + Self.quoteIdentifier(self.name)
    }

    /// The same name with a suffix on its last part (e.g. an index or sequence named after a table).
    public func appending(_ suffix: String) -> QualifiedName {
        QualifiedName(schema: self.schema, name: self.name + suffix)
    }

    /// A string literal naming the relation, for `'...'::regclass`: the quoted form, escaped.
    public var regclassLiteral: String { Self.quoteLiteral(self.quoted) }

    /// `schema.name` as written by the user.
    public var description: String { (self.schema.map { $0 + "." } ?? "") + self.name }

    /// Quotes an identifier: wraps it in double quotes and doubles any inside.
    public static func quoteIdentifier(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Quotes a string literal: doubles single quotes; text with a backslash becomes an
    /// `E'...'` literal with the backslashes doubled, which reads the same whatever
    /// `standard_conforming_strings` is.
    public static func quoteLiteral(_ text: String) -> String {
        let quoted = text.replacingOccurrences(of: "'", with: "''")
        guard quoted.contains("\\") else { return "'" + quoted + "'" }
        return "E'" + quoted.replacingOccurrences(of: "\\", with: "\\\\") + "'"
    }
}

