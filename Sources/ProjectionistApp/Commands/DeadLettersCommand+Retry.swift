import ArgumentParser
import Encryption
import EventStore
import Postgres
import Projections

extension DeadLettersCommand {
    /// `dead-letters retry NAME [--aggregate TYPE/ID] [--position N]`.
    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply dead letters through the projection's handlers and delete them (default: every parked aggregate).",
            discussion: """
                Each aggregate in one transaction under its unit's checkpoint row lock, between the daemon's batches: its \
                parked events in position order. One that fails again stays parked (attempts + 1, its error updated) and \
                the next is tried. Exit 0 when everything tried applied, 1 otherwise.
                """)

        @Argument(help: "The projection, as named in the configuration.") var name: String
        @Option(help: "Only this parked aggregate (TYPE/ID).") var aggregate: String?
        @Option(help: "Only the dead letter at this position: a skipped one, or the first parked one of its aggregate.")
        var position: Int64?
        @OptionGroup var options: ConfigOption

        func validate() throws {
            _ = try DeadLettersCommand.aggregate(self.aggregate)
            if self.aggregate != nil, self.position != nil { throw ValidationError("give --aggregate or --position, not both") }
        }

        func run() async throws {
            try await withExitCodes {
                let config = try self.options.load()
                let (projection, connection, decryptor) = try await DeadLettersCommand.prepare(config, self.name, for: "dead-letters")
                if let position {
                    try await self.retry(position: position, projection, decryptor, config.schema, on: connection)
                    return
                }
                let aggregate = try DeadLettersCommand.aggregate(self.aggregate)
                let units =
                    if let aggregate { [try await WorkUnit.unit(of: aggregate, in: projection, on: connection)] }
                    else { WorkUnit.units(of: projection) }
                var outcome = DeadLetterRetry.Outcome()
                for unit in units {
                    outcome.results += try await DeadLetterRetry.retry(
                        projection: projection, unit: unit.name, aggregates: aggregate.map { [$0] }, schema: config.schema,
                        decryptor: decryptor, on: connection
                    ).results
                }
                guard !outcome.results.isEmpty else {
                    print("nothing to retry: " + (aggregate.map { "aggregate \($0) is not parked in projection \(self.name)" } ?? "projection \(self.name) has no parked aggregates"))
                    return
                }
                for result in outcome.results { print(Self.describe(result)) }
                let applied = outcome.results.filter { $0.failure == nil }.count
                print("retry \(self.name): \(applied) aggregate(s) applied, \(outcome.results.count - applied) still parked")
                if !outcome.allApplied { throw ExitStatus.failure.exitCode }
            }
        }

        /// One aggregate's line: what applied, or where it failed and what stays parked.
        static func describe(_ result: DeadLetterRetry.AggregateResult) -> String {
            let partition = WorkUnit.parse(result.unit).partition.map { " (partition \($0))" } ?? ""
            guard let failure = result.failure else {
                return "applied \(result.aggregate)\(partition): \(result.applied.count) event(s), position(s) \(result.applied.map(String.init).joined(separator: ", "))"
            }
            return "still parked \(result.aggregate)\(partition): position \(failure.position) failed again (attempts \(failure.attempts)): \(failure.error); \(result.stillParked) event(s) parked"
        }

        func retry(
            position: Int64, _ projection: SQLProjection, _ decryptor: PayloadDecryptor?, _ schema: Schema,
            on connection: PostgresConnection
        ) async throws {
            switch try await DeadLetterRetry.retry(projection: projection, position: position, schema: schema, decryptor: decryptor, on: connection) {
            case .nothing:
                print("nothing to retry: projection \(self.name) has no dead letter at position \(position)")
            case .applied(let letter):
                var line = "applied position \(position) (\(letter.status.rawValue), event type \(letter.eventType ?? "?"))"
                if letter.status == .parked, let aggregate = letter.aggregate {
                    let parked = try await DeadLetterRetry.parkedAggregates(unit: letter.unit, schema: schema, on: connection).contains(aggregate)
                    line += parked ? "; aggregate \(aggregate) is still parked at its next event" : "; aggregate \(aggregate) is no longer parked"
                }
                print(line)
            case .failed(let letter, let failure):
                print("still \(letter.status.rawValue): position \(position) failed again (attempts \(failure.attempts)): \(failure.error)")
                throw ExitStatus.failure.exitCode
            case .notFirst(let letter, let first):
                let aggregate = letter.aggregate?.description ?? "?"
                printError(
                    "error: position \(position) is not the first parked event of aggregate \(aggregate) (that is position \(first)): its events apply in order; use --aggregate \(aggregate)")
                throw ExitStatus.usage.exitCode
            }
        }
    }
}
