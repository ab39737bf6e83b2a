import ArgumentParser
import Logging

/// `projectionist run`.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the daemon in the foreground until SIGTERM or SIGINT.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        LoggingSetup.bootstrap()
        try await withExitCodes {
            let config = try self.options.load()
            try await Daemon(configuration: config, logger: Logger(label: "projectionist")).run()
        }
    }
}
