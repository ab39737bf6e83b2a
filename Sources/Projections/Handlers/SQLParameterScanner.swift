/// Rewrites the named parameters of handler SQL (`$aggregate_id`, `$payload`, ...) into
/// positional ones (`$1`, `$2`, ...), so values are bound, never spliced.
///
/// String literals (`'...'`, `E'...'` with backslash escapes), quoted identifiers, comments
/// (`--`, nested `/* */`) and dollar-quoted bodies (`$tag$...$tag$`) are copied unscanned.
/// A `$` inside an identifier (`a$b`) is part of it, as in PostgreSQL.
public enum SQLParameterScanner {
    /// The rewritten SQL and the parameter names in positional order (each name once).
    public struct Result: Sendable, Equatable {
        public var sql: String
        public var names: [String]
    }

    /// Why handler SQL was refused.
    public struct ScanError: Error, Equatable, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { self.message }
    }

    /// - Parameter known: the parameter names allowed (without `$`).
    /// - Throws: `ScanError` for an unknown name, a positional `$1`, an unterminated literal,
    ///   identifier, comment or dollar quote, or more than one statement.
    public static func rewrite(_ sql: String, known: Set<String>) throws -> Result {
        let chars = Array(sql.unicodeScalars)
        var output = String.UnicodeScalarView()
        var names: [String] = []
        var index = 0
        var statementEnded = false

        func isIdentifierStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
        func isIdentifierPart(_ c: Unicode.Scalar) -> Bool { isIdentifierStart(c) || ("0"..."9").contains(c) || c == "$" }
        func copy(until end: Int) {
            output.append(contentsOf: chars[index..<end])
            index = end
        }
        func fail(_ message: String) -> ScanError { ScanError(message: message) }

        while index < chars.count {
            let c = chars[index]
            let next: Unicode.Scalar? = index + 1 < chars.count ? chars[index + 1] : nil
            if statementEnded && !c.properties.isWhitespace && !(c == "-" && next == "-") && !(c == "/" && next == "*") && c != ";" {
                throw fail("more than one statement in one handler entry: give a list of statements instead")
            }
            switch c {
            case "'":
                // E'...' (backslash escapes) when an E stands right before the quote and is not part of a word.
                let escapes = index > 0 && (chars[index - 1] == "E" || chars[index - 1] == "e")
                    && (index < 2 || !isIdentifierPart(chars[index - 2]))
                var end = index + 1
                while true {
                    guard end < chars.count else { throw fail("unterminated string literal") }
                    if escapes && chars[end] == "\\" { end += 2; continue }
                    if chars[end] == "'" {
                        if end + 1 < chars.count && chars[end + 1] == "'" { end += 2; continue }
                        break
                    }
                    end += 1
                }
                copy(until: end + 1)
            case "\"":
                var end = index + 1
                while true {
                    guard end < chars.count else { throw fail("unterminated quoted identifier") }
                    if chars[end] == "\"" {
                        if end + 1 < chars.count && chars[end + 1] == "\"" { end += 2; continue }
                        break
                    }
                    end += 1
                }
                copy(until: end + 1)
            case "-" where next == "-":
                var end = index
                while end < chars.count && chars[end] != "\n" { end += 1 }
                copy(until: end)
            case "/" where next == "*":
                var depth = 0
                var end = index
                repeat {
                    guard end + 1 < chars.count else { throw fail("unterminated /* comment */") }
                    if chars[end] == "/" && chars[end + 1] == "*" { depth += 1; end += 2 }
                    else if chars[end] == "*" && chars[end + 1] == "/" { depth -= 1; end += 2 }
                    else { end += 1 }
                } while depth > 0
                copy(until: end)
            case ";":
                statementEnded = true
                index += 1  // a trailing semicolon is dropped: prepared statements take exactly one
            case "$" where index > 0 && isIdentifierPart(chars[index - 1]) && chars[index - 1] != "$":
                copy(until: index + 1)  // part of an identifier such as a$b
            case "$":
                var end = index + 1
                while end < chars.count && (isIdentifierStart(chars[end]) || (end > index + 1 && ("0"..."9").contains(chars[end]))) {
                    end += 1
                }
                let word = String(String.UnicodeScalarView(chars[(index + 1)..<end]))
                if end < chars.count && chars[end] == "$" {
                    // A dollar quote $tag$ ... $tag$ (or $$ ... $$): copy it whole.
                    let tag = Array(chars[index...end])
                    var close = end + 1
                    while true {
                        guard close + tag.count <= chars.count else { throw fail("unterminated dollar-quoted string \(String(String.UnicodeScalarView(tag)))") }
                        if Array(chars[close..<(close + tag.count)]) == tag { break }
                        close += 1
                    }
                    copy(until: close + tag.count)
                } else if word.isEmpty {
                    if end < chars.count && ("0"..."9").contains(chars[end]) {
                        throw fail("positional parameters ($1, $2, ...) are not supported: use named ones such as $aggregate_id")
                    }
                    copy(until: index + 1)
                } else {
                    guard known.contains(word) else {
                        throw fail("unknown parameter $\(word); known: \(known.sorted().map { "$" + $0 }.joined(separator: ", "))")
                    }
                    if !names.contains(word) { names.append(word) }
                    output.append(contentsOf: "$\(names.firstIndex(of: word)! + 1)".unicodeScalars)
                    index = end
                }
            default:
                copy(until: index + 1)
            }
        }
        let text = String(output)
        guard text.contains(where: { !$0.isWhitespace }) else { throw fail("the statement is empty") }
        return Result(sql: text, names: names)
    }
}
