import ArgumentParser
import Postgres

/// `projectionist check`: for CI pipelines, what `migrate` would do and refuse, changing nothing.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the configuration and every handler's SQL against the database, as migrate would, then roll back (changes nothing).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await withExitCodes {
            let config = try self.options.load()
            let connection = try await config.connect(for: "check")
            let statements = try await Migrator(configuration: config).check(on: connection)
            print(
                "check: \(config.file) is valid: \(config.projections.count) projection(s), \(statements) handler statement(s) accepted by the server after the migration and setup SQL (rolled back)"
            )
        }
    }
}
