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
            let config = try self.options.load()
            let connection = try await config.connect(for: "status")
            let report = try await StatusReport.read(config, on: connection)
            print(self.json ? report.json : report.table)
        }
    }
}
