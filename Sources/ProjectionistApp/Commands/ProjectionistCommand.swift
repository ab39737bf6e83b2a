import ArgumentParser

/// `projectionist`: the daemon and its operator commands (docs/reference.md).
public struct ProjectionistCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "projectionist",
        abstract: "Keeps the read models of a PostgreSQL event store up to date, exactly once.",
        subcommands: [
            RunCommand.self, MigrateCommand.self, CheckCommand.self, MigrationsCommand.self, StatusCommand.self, ResetCommand.self, WaitCommand.self,
            DropCommand.self, DeadLettersCommand.self, KeysCommand.self,
        ])

    public init() {}
}

/// `--config FILE`, shared by every command that reads the configuration.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: $PROJECTIONIST_CONFIG, else /etc/projectionist/projectionist.yaml).")
    var config: String?
}

extension ProjectionistCommand {
    /// Parses the process arguments and runs the chosen command, asynchronously.
    /// (Spelled out because a top-level `main()` call resolves to the synchronous overload.)
    public static func runAsRoot() async {
        do {
            var command = try self.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            self.exit(withError: error)
        }
    }
}
