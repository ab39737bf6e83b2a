import ArgumentParser
import Logging
import Postgres
import Projections

/// `projectionist reset NAME [--to POSITION]`: rebuild by checkpoint reset, while a daemon runs.
struct ResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Rebuild a projection: run its reset SQL (when rewinding to 0) and set its checkpoint; a running daemon continues from there.")

    @Argument(help: "The projection's name.") var name: String
    @Option(help: "The checkpoint to set (default 0: a full rebuild).") var to: Int64 = 0
    @OptionGroup var options: ConfigOption

    func validate() throws {
        guard self.to >= 0 else { throw ValidationError("--to must be 0 or a positive position") }
    }

    func run() async throws {
        try await withExitCodes {
            let config = try self.options.load()
            let projection = try config.requireProjection(named: self.name)
            let connection = try await config.connect(for: "reset")
            try await StartupCheck.verify(config.schema, allowSequenceCache: true, on: connection)
            let previous = try await ProjectionReset.reset(projection, to: self.to, schema: config.schema, on: connection)
            print("reset \(self.name): checkpoint \(previous) → \(self.to)" + (self.to == 0 ? " (reset SQL run)" : ""))
        }
    }
}
