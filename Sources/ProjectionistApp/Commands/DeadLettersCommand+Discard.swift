import ArgumentParser
import Logging
import Projections

extension DeadLettersCommand {
    /// `dead-letters discard NAME (--aggregate TYPE/ID | --position N | --all)`: audited.
    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete dead letters without applying them; an aggregate left without parked events is no longer parked. Audited in the log.",
            discussion: "Exactly one of --aggregate, --position and --all. The events discarded are lost to the projection (reset it to rebuild).")

        @Argument(help: "The projection, as named in the configuration.") var name: String
        @Option(help: "Every dead letter of this aggregate (TYPE/ID).") var aggregate: String?
        @Option(help: "The dead letter at this position.") var position: Int64?
        @Flag(help: "Every dead letter of the projection.") var all = false
        @OptionGroup var options: ConfigOption

        func validate() throws {
            _ = try DeadLettersCommand.aggregate(self.aggregate)
            let given = [self.aggregate != nil, self.position != nil, self.all].filter { $0 }.count
            guard given == 1 else { throw ValidationError("give exactly one of --aggregate TYPE/ID, --position N and --all") }
        }

        func run() async throws {
            try await withExitCodes {
                let config = try self.options.load()
                let projection = try config.requireProjection(named: self.name)
                let connection = try await config.connect(for: "dead-letters")
                try await StartupCheck.verify(config.schema, allowSequenceCache: true, on: connection)
                let selection: DeadLetterDiscard.Selection =
                    if let aggregate = try DeadLettersCommand.aggregate(self.aggregate) { .aggregate(aggregate) }
                    else if let position { .position(position) }
                    else { .all }
                let outcome = try await DeadLetterDiscard.discard(selection, of: projection, schema: config.schema, on: connection)
                let what =
                    switch selection {
                    case .aggregate(let aggregate): "aggregate \(aggregate)"
                    case .position(let position): "position \(position)"
                    case .all: "all"
                    }
                let released = outcome.released.map(\.description)
                let metadata: Logger.Metadata = [
                    "projection": "\(self.name)", "selection": "\(what)", "deleted": "\(outcome.deleted.count)",
                    "skipped": "\(outcome.skipped)", "parked": "\(outcome.parked)", "released": "\(released.joined(separator: ", "))",
                ]
                if outcome.deleted.isEmpty {
                    Operator.audit("No dead letter to discard: nothing deleted.", metadata, label: "projectionist.dead-letters")
                    print("nothing to discard: projection \(self.name) has no dead letter for \(what)")
                    return
                }
                Operator.audit("Discarded \(outcome.deleted.count) dead letter(s) without applying them.", metadata, label: "projectionist.dead-letters")
                var line = "discarded \(outcome.deleted.count) dead letter(s) of \(self.name) (\(outcome.skipped) skipped, \(outcome.parked) parked)"
                if !released.isEmpty { line += "; no longer parked: \(released.joined(separator: ", "))" }
                print(line)
            }
        }
    }
}
