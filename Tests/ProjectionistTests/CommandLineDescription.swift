import Foundation
import TestSupport

/// The built `projectionist`'s commands and arguments as swift-argument-parser describes them
/// (`--experimental-dump-help`): what the parser really accepts, not what the help text says.
struct CommandLineDescription {
    /// One flag, option or positional argument of a command.
    struct Argument {
        /// `--long-name` for flags and options, the upper-cased value name for positionals.
        var token: String
        var defaultValue: String?
    }

    /// Arguments by command path (`run`, `migrations generate`); the root command is left out.
    var commands: [String: [Argument]] = [:]

    /// Runs the binary and reads its description.
    static func load() async throws -> CommandLineDescription {
        let output = try await ProjectionistProcess.run(["--experimental-dump-help"])
        guard output.status == 0, let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any],
            let root = json["command"] as? [String: Any]
        else {
            throw DescriptionError(message: "projectionist --experimental-dump-help failed: \(output.stderr)")
        }
        var description = CommandLineDescription()
        description.add(root, path: nil)
        return description
    }

    private mutating func add(_ command: [String: Any], path: String?) {
        if let path {
            self.commands[path] = (command["arguments"] as? [[String: Any]] ?? []).compactMap(Self.argument)
        }
        for sub in command["subcommands"] as? [[String: Any]] ?? [] {
            let name = sub["commandName"] as? String ?? "?"
            self.add(sub, path: path.map { "\($0) \(name)" } ?? name)
        }
    }

    /// nil for `-h`/`--help` and `--version`, which every command has (docs/reference.md says so once).
    private static func argument(_ json: [String: Any]) -> Argument? {
        let defaultValue = json["defaultValue"] as? String
        if json["kind"] as? String == "positional" {
            return Argument(token: (json["valueName"] as? String ?? "?").uppercased(), defaultValue: defaultValue)
        }
        let preferred = (json["preferredName"] as? [String: Any])?["name"] as? String ?? "?"
        return ["help", "version"].contains(preferred) ? nil : Argument(token: "--\(preferred)", defaultValue: defaultValue)
    }

    struct DescriptionError: Error, CustomStringConvertible {
        var message: String
        var description: String { self.message }
    }
}
