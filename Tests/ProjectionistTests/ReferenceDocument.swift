import Foundation

/// docs/reference.md read as data: the rows of the Markdown table that follows a heading.
struct ReferenceDocument {
    let lines: [String]

    init(path: String = repositoryRoot.appendingPathComponent("docs/reference.md").path) throws {
        self.lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
    }

    /// The cells of each row of the first table after `heading` (an exact heading line), without
    /// the header and separator rows; empty when there is no such heading or table.
    func rows(under heading: String) -> [[String]] {
        guard let start = self.lines.firstIndex(of: heading) else { return [] }
        return Self.table(in: self.lines[(start + 1)...].prefix { !Self.isHeading($0, atMost: heading) })
    }

    /// The `###` sections under `heading` whose title is one code span (e.g. a table's name),
    /// with the rows of each one's first table.
    func codeSections(under heading: String) -> [(name: String, rows: [[String]])] {
        guard let start = self.lines.firstIndex(of: heading) else { return [] }
        let body = self.lines[(start + 1)...].prefix { !Self.isHeading($0, atMost: heading) }
        return body.indices.compactMap { index in
            let line = body[index]
            guard line.hasPrefix("### "), let name = Self.literal(String(line.dropFirst(4))) else { return nil }
            let section = body[(index + 1)...].prefix { !$0.hasPrefix("#") }
            return (name, Self.table(in: section))
        }
    }

    /// The text of every code span in `cell`, in order.
    static func codeSpans(_ cell: String) -> [String] {
        cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    /// The first code span in `cell`.
    static func code(_ cell: String) -> String? { self.codeSpans(cell).first }

    /// The cell's text when the cell is exactly one code span (a literal value), else nil.
    static func literal(_ cell: String) -> String? {
        let trimmed = cell.trimmingCharacters(in: .whitespaces)
        guard trimmed.count >= 2, trimmed.first == "`", trimmed.last == "`" else { return nil }
        let inner = trimmed.dropFirst().dropLast()
        return inner.contains("`") ? nil : String(inner)
    }

    private static func isHeading(_ line: String, atMost heading: String) -> Bool {
        let level = heading.prefix { $0 == "#" }.count
        let own = line.prefix { $0 == "#" }.count
        return own > 0 && own <= level && line.dropFirst(own).first == " "
    }

    private static func table(in lines: some Collection<String>) -> [[String]] {
        let table = lines.drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
        return table.dropFirst(2).map { line in
            line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }
}
