import ArgumentParser
import Logging
import Postgres
import Projections

/// `projectionist drop NAME`: removes a retired projection's tables and checkpoint rows.
struct DropCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Remove a retired projection: its tables (its drop SQL, else its reset SQL) and its checkpoint rows.")

    @Argument(help: "The projection's name (still in the configuration).") var name: String
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await withExitCodes {
            let config = try self.options.load()
            let projection = try config.requireProjection(named: self.name)
            let connection = try await config.connect(for: "drop")
            try await StartupCheck.verify(config.schema, allowSequenceCache: true, on: connection)
            do {
                let rows = try await ProjectionDrop.drop(projection, dropSQL: projection.dropSQL, schema: config.schema, on: connection)
                print("dropped \(self.name): \(projection.dropSQL == nil ? "reset" : "drop") SQL run, \(rows) checkpoint row(s) removed; remove it from \(config.file) now")
            } catch let refused as ProjectionDrop.Refused {
                printError("error: \(refused)")
                throw ExitStatus.usage.exitCode
            }
        }
    }
}
