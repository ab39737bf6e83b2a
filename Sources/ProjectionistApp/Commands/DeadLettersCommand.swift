import ArgumentParser
import Encryption
import Foundation
import Postgres
import Projections

/// `projectionist dead-letters list|retry|discard`: failed events as an operator's work list.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List, retry or discard dead letters: events a projection skipped (on_error: skip) or parked (on_error: park).",
        subcommands: [List.self, Retry.self, Discard.self])

    /// `dead-letters list [NAME] [--json]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the dead letters (of one projection, or of every one), by projection and position.")

        @Argument(help: "Only this projection's (as named in the configuration).") var name: String?
        @Flag(help: "Print one JSON object.") var json = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withExitCodes {
                let config = try self.options.load()
                if let name { try config.requireProjections([name]) }
                let connection = try await config.connect(for: "dead-letters")
                try await StartupCheck.verify(config.schema, allowSequenceCache: true, on: connection)
                let letters = try await DeadLetterList.list(projection: self.name, schema: config.schema, on: connection)
                print(self.json ? DeadLetterReport.json(letters) : DeadLetterReport.table(letters, projection: self.name))
            }
        }
    }
}

/// What the dead-letter commands share: the parsed `--aggregate`, and a connection ready to
/// apply a projection's events.
extension DeadLettersCommand {
    /// `TYPE/ID` parsed; a ValidationError (64) saying how to write it.
    static func aggregate(_ text: String?) throws -> AggregateKey? {
        guard let text else { return nil }
        guard let key = AggregateKey(parsing: text) else {
            throw ValidationError("--aggregate '\(text)' is not TYPE/ID (the aggregate type, a '/', the aggregate id: e.g. Order/o-42)")
        }
        return key
    }

    /// The projection, a checked connection prepared for its handlers, and its decryptor.
    static func prepare(_ config: ProjectionistConfiguration, _ name: String, for command: String) async throws
        -> (SQLProjection, PostgresConnection, PayloadDecryptor?)
    {
        let projection = try config.requireProjection(named: name)
        let decryptor = projection.decryptsPayloads ? try config.payloadDecryptor() : nil
        let connection = try await config.connect(for: command)
        try await StartupCheck.verify(config.schema, allowSequenceCache: true, on: connection)
        try await projection.prepare(connection)
        return (projection, connection, decryptor)
    }
}
