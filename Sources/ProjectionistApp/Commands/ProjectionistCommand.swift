import ArgumentParser
import BuildInfo

/// `projectionist`: the daemon and its operator commands (docs/reference.md).
public struct ProjectionistCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "projectionist",
        abstract: "Keeps the read models of a PostgreSQL event store up to date, exactly once.",
        discussion: """
            Projections are declared in the configuration file (FILES below); `projectionist migrate` \
            creates their tables, then `projectionist run` keeps them up to date until SIGTERM.

            FILES: /etc/projectionist/projectionist.yaml (or --config, or $PROJECTIONIST_CONFIG); \
            $PROJECTIONIST_DATABASE_URL overrides database.url.

            EXIT STATUS: 0 done, or a clean shutdown on SIGTERM/SIGINT; 1 a failure the message names; \
            64 a bad command line or an unknown projection; 69 the database stayed unreachable for \
            database.startup_timeout; 73 a file could not be written; 75 wait timed out; 78 the \
            configuration or the schema is wrong (the systemd unit does not restart on it).
            """,
        version: BuildInfo.versionLine,
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
