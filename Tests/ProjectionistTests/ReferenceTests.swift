import EventStore
import Foundation
import Postgres
import ProjectionistApp
import Projections
import TestSupport
import TestTraits
import Testing

/// Keeps docs/reference.md true: each of its tables is compared with what the code accepts or
/// creates, in both directions (nothing undocumented, nothing documented that does not exist).
@Suite(.database, .timeLimit(.minutes(1)))
struct ReferenceTests {
    let document: ReferenceDocument

    init() throws { self.document = try ReferenceDocument() }

    @Test("every configuration key the parser accepts is documented, and nothing else")
    func configurationKeys() throws {
        let accepted = try Self.acceptedKeys()
        let documented = self.document.rows(under: "## Configuration").compactMap { ReferenceDocument.code($0[0]) }
        Self.expectSame(documented, accepted, "configuration keys", code: "the parser")
        #expect(Set(ProjectionistConfiguration.knownKeys) == Set(accepted), "ProjectionistConfiguration.knownKeys drifted from the parser")
    }

    @Test("every documented literal default is the parser's default")
    func configurationDefaults() throws {
        let projectionEntry = "projections:\n  - name: p\n    handlers:\n      X: SELECT 1\n"
        var checked: [String] = []
        for row in self.document.rows(under: "## Configuration") {
            guard let key = ReferenceDocument.code(row[0]), let value = ReferenceDocument.literal(row[2]) else { continue }
            let base: String
            let withValue: String
            if key.hasPrefix("projections[].") {
                base = projectionEntry
                withValue = projectionEntry + "    \(key.dropFirst("projections[].".count)): \(value)\n"
            } else if key.hasPrefix("encryption.") {  // a section with required keys
                base = "encryption:\n  system_keys: /etc/keys\n  active_key: k1\n"
                withValue = base + "  \(key.dropFirst("encryption.".count)): \(value)\n"
            } else {
                let parts = key.split(separator: ".", maxSplits: 1)
                base = ""
                withValue = "\(parts[0]):\n  \(parts[1]): \(value)\n"
            }
            let defaults = try ProjectionistConfiguration.parse(base, file: "reference.yaml")
            let explicit = try ProjectionistConfiguration.parse(withValue, file: "reference.yaml")
            #expect(String(describing: explicit) == String(describing: defaults), "\(key): the documented default `\(value)` is not the default")
            checked.append(key)
        }
        #expect(checked.contains("worker.slow_batch_warn"), "no literal default found; checked: \(checked)")
    }

    @Test("every command, flag and argument is documented with its default, and nothing else")
    func commandLine() async throws {
        let parser = try await CommandLineDescription.load()
        let commands = self.document.rows(under: "## Commands").compactMap { ReferenceDocument.code($0[0]) }
            .map { $0.replacingOccurrences(of: "projectionist ", with: "") }
        Self.expectSame(commands, Array(parser.commands.keys), "commands", code: "swift-argument-parser")

        // `help` is swift-argument-parser's own: its arguments are its business.
        var accepted: [String: String?] = [:]
        for (command, arguments) in parser.commands where command != "help" {
            for argument in arguments { accepted["\(command) \(argument.token)"] = argument.defaultValue }
        }
        var documented: [String: String] = [:]
        for row in self.document.rows(under: "## Flags and arguments") {
            guard let command = ReferenceDocument.code(row[0]), let flag = ReferenceDocument.code(row[1]) else { continue }
            documented["\(command) \(flag.split(separator: " ")[0])"] = row[2]
        }
        Self.expectSame(Array(documented.keys), Array(accepted.keys), "flags and arguments", code: "swift-argument-parser")
        for (flag, cell) in documented {
            guard let parsed = accepted[flag] else { continue }
            #expect(ReferenceDocument.literal(cell) == parsed, "\(flag): documented default \(cell), parser's \(parsed ?? "none")")
        }
    }

    @Test("the exit codes are ExitStatus's, and the commands use no others")
    func exitCodes() throws {
        var documented: [Int32: String] = [:]
        for row in self.document.rows(under: "## Exit codes") {
            guard let code = ReferenceDocument.code(row[0]).flatMap({ Int32($0) }) else { continue }
            documented[code] = ReferenceDocument.literal(row[1]) ?? row[1]
        }
        let defined = Dictionary(uniqueKeysWithValues: ExitStatus.allCases.map { ($0.rawValue, "\($0)") })
        #expect(documented == defined)
        // A bare `ExitCode(64)` would be an exit code this test cannot see.
        let commands = repositoryRoot.appendingPathComponent("Sources/ProjectionistApp")
        for file in FileManager.default.enumerator(atPath: commands.path)?.compactMap({ $0 as? String }) ?? [] where file.hasSuffix(".swift") {
            let text = try String(contentsOf: commands.appendingPathComponent(file), encoding: .utf8)
            #expect(text.range(of: #"ExitCode\(\s*\d"#, options: .regularExpression) == nil, "\(file) exits with a literal code")
        }
        let unit = try String(contentsOf: repositoryRoot.appendingPathComponent("systemd/projectionist.service"), encoding: .utf8)
        #expect(unit.contains("RestartPreventExitStatus=\(ExitStatus.configuration.rawValue)\n"))
    }

    @Test("every environment variable the product reads is documented")
    func environment() throws {
        let documented = Set(self.document.rows(under: "## Environment").flatMap { ReferenceDocument.codeSpans($0[0]) })
        var read: Set<String> = []
        for module in ["ProjectionistApp", "Projections", "EventStore", "Postgres", "Systemd"] {
            let directory = repositoryRoot.appendingPathComponent("Sources/\(module)")
            for file in FileManager.default.enumerator(atPath: directory.path)?.compactMap({ $0 as? String }) ?? [] where file.hasSuffix(".swift") {
                let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                let pattern = try Regex(#"environment\["([A-Z_]+)"\]"#)
                for match in text.matches(of: pattern) { read.insert(String(match.output[1].substring ?? "")) }
            }
        }
        #expect(read.contains("PROJECTIONIST_DATABASE_URL"), "the scan found nothing: \(read)")
        #expect(read.subtracting(documented).isEmpty, "read but not documented: \(read.subtracting(documented).sorted())")
    }

    @Test("tables, columns, types and handler parameters match a freshly migrated database")
    func tablesAndParameters() async throws {
        let db = try await TestDatabase.migrated("reference")
        let connection = try await db.connect()
        let tables = try await connection.query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
        ).map { try $0.decode(String.self, at: 0) }
        let sections = self.document.codeSections(under: "## Tables")
        Self.expectSame(sections.map(\.name), tables, "tables", code: "the migration")
        for (table, rows) in sections {
            let columns = try await connection.query(
                """
                SELECT column_name::text || ' ' || CASE WHEN data_type = 'ARRAY' THEN substr(udt_name::text, 2) || '[]' ELSE data_type END || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
                FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position
                """, [table]
            ).map { try $0.decode(String.self, at: 0) }
            let documented = rows.map { "\(ReferenceDocument.code($0[0]) ?? $0[0]) \(ReferenceDocument.code($0[1]) ?? $0[1])" }
            #expect(documented == columns, "table \(table)")
        }

        var parameters: [String: String] = [:]
        for (name, oid) in SQLProjection.parameterTypes {
            parameters["$" + name] = try await connection.query("SELECT \(oid)::oid::regtype::text")[0].decode(String.self, at: 0)
        }
        var documented: [String: String] = [:]
        for row in self.document.rows(under: "### Handler parameters") {
            if let name = ReferenceDocument.code(row[0]) { documented[name] = ReferenceDocument.code(row[1]) ?? row[1] }
        }
        #expect(documented == parameters)
    }

    // MARK: - Helpers

    /// The configuration keys as the parser's own "unknown key" messages list them: a section's
    /// keys as `section.key`, a list entry's as `section[].key`.
    static func acceptedKeys() throws -> [String] {
        let unknown = "zz_not_a_key"
        func allowed(_ yaml: String) -> [String]? {
            do {
                _ = try ProjectionistConfiguration.parse(yaml, file: "probe.yaml")
            } catch let error as ConfigurationError {
                guard let list = error.message.components(separatedBy: "expected one of: ").dropFirst().first else { return nil }
                return list.components(separatedBy: ", ")
            } catch {}
            return nil
        }
        guard let sections = allowed("\(unknown): 1\n") else { throw ProbeError() }
        var keys: [String] = []
        for section in sections {
            if let mapping = allowed("\(section):\n  \(unknown): 1\n") {
                keys += mapping.map { "\(section).\($0)" }
            } else if let entry = allowed("\(section):\n  - \(unknown): 1\n") {
                keys += entry.map { "\(section)[].\($0)" }
            } else {
                throw ProbeError()
            }
        }
        return keys
    }

    struct ProbeError: Error {}

    /// Expects the two lists to hold the same names, saying which are missing on which side.
    static func expectSame(_ documented: [String], _ actual: [String], _ what: String, code: String) {
        let missing = Set(actual).subtracting(documented).sorted()
        let extra = Set(documented).subtracting(actual).sorted()
        #expect(missing.isEmpty, "\(what) in \(code) but not in docs/reference.md: \(missing)")
        #expect(extra.isEmpty, "\(what) in docs/reference.md but not in \(code): \(extra)")
        #expect(!actual.isEmpty, "no \(what) found in \(code)")
    }
}
