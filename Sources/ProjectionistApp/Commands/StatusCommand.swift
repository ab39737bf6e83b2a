import ArgumentParser
import EventStore
import Foundation
import Logging
import Postgres
import Projections

/// `projectionist status`: one row per configured projection, from the checkpoint table.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show each configured projection's checkpoint, lag and state.")

    @OptionGroup var options: ConfigOption
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        try await withExitCodes {
            let config = try ProjectionistConfiguration.load(path: ProjectionistConfiguration.path(option: self.options.config))
            let connection = try await DatabaseConnector.connect(
                try config.connectionConfiguration(), timeout: config.database.startupTimeout, logger: Logger(label: "projectionist.status"))
            let report = try await StatusReport.read(config, on: connection)
            print(self.json ? report.json : report.table)
        }
    }
}
