import ArgumentParser
import Logging
import Postgres
import Projections

/// `projectionist reset NAME [--to POSITION | --aggregate TYPE/ID]`: rebuild by checkpoint reset,
/// or one aggregate's rows, while a daemon runs.
struct ResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Rebuild a projection: run its reset SQL (when rewinding to 0) and set its checkpoint; a running daemon continues from there.")

    @Argument(help: "The projection's name.") var name: String
    // Unconditional: `--to -5` reaches `validate` (a clear message) instead of reading as an option.
    @Option(parsing: .unconditional, help: "The checkpoint to set, at most the log's head (default 0: a full rebuild).") var to: Int64 = 0
    @Option(help: "Rebuild only this aggregate's rows (TYPE/ID) with the projection's reset_aggregate SQL; the checkpoint does not move.")
    var aggregate: String?
    @OptionGroup var options: ConfigOption

    func validate() throws {
        guard self.to >= 0 else { throw ValidationError("--to must be 0 or more (a position in the log), not \(self.to)") }
        _ = try DeadLettersCommand.aggregate(self.aggregate)
        if self.aggregate != nil, self.to != 0 { throw ValidationError("give --to or --aggregate, not both") }
    }

    func run() async throws {
        try await withExitCodes {
            let config = try self.options.load()
            if let aggregate = try DeadLettersCommand.aggregate(self.aggregate) {
                try await self.reset(aggregate, config)
                return
            }
            let projection = try config.requireProjection(named: self.name)
            let connection = try await config.connect(for: "reset")
            try await StartupCheck.verify(config.schema, allowSequenceCache: true, on: connection)
            let outcome: ProjectionReset.Outcome
            do {
                outcome = try await ProjectionReset.reset(projection, to: self.to, schema: config.schema, on: connection)
            } catch let refused as ProjectionReset.PastHead {
                printError("error: \(refused)")
                throw ExitStatus.usage.exitCode
            }
            print("reset \(self.name): \(Self.describe(outcome, units: WorkUnit.units(of: projection).map(\.name), to: self.to))")
        }
    }

    /// "checkpoint 120 → 0 (reset SQL run)", or with several rows (partitions, a layout change)
    /// each old one: "checkpoints cnt#0/2 at 120, cnt#1/2 at 118 → 0 (reset SQL run; removed the
    /// rows of the old layout: cnt#0/2, cnt#1/2)".
    static func describe(_ outcome: ProjectionReset.Outcome, units: [String], to position: Int64) -> String {
        let previous = outcome.previous
        var line =
            if previous.count == 1, previous[0].unit == units.first, units.count == 1 { "checkpoint \(previous[0].position) → \(position)" }
            else if previous.isEmpty { "checkpoint (none) → \(position)" }
            else { "checkpoints " + previous.map { "\($0.unit) at \($0.position)" }.joined(separator: ", ") + " → \(position)" }
        var notes: [String] = []
        if position == 0 { notes.append("reset SQL run") }
        let removed = previous.map(\.unit).filter { !units.contains($0) }
        if !removed.isEmpty { notes.append("removed the rows of the old layout: " + removed.joined(separator: ", ")) }
        if !notes.isEmpty { line += " (" + notes.joined(separator: "; ") + ")" }
        return line
    }

    /// `--aggregate`: the aggregate's rows rebuilt up to the checkpoint, which stays.
    func reset(_ aggregate: AggregateKey, _ config: ProjectionistConfiguration) async throws {
        let projection = try config.requireProjection(named: self.name)
        guard projection.resetsAggregates else {
            printError("error: \(AggregateReset.NotSupported(projection: self.name))")
            throw ExitStatus.usage.exitCode
        }
        let (_, connection, decryptor) = try await DeadLettersCommand.prepare(config, self.name, for: "reset")
        let outcome: AggregateReset.Outcome
        do {
            outcome = try await AggregateReset.reset(projection, aggregate: aggregate, schema: config.schema, decryptor: decryptor, on: connection)
        } catch let error as HandlerError {
            printError("error: reset of aggregate \(aggregate) rolled back, nothing changed: \(projection.redactsErrors ? error.redacted() : error)")
            throw ExitStatus.failure.exitCode
        }
        let unit = outcome.unit == self.name ? "" : " (unit \(outcome.unit))"
        var line = "reset \(self.name) aggregate \(aggregate)\(unit): reset_aggregate SQL run, \(outcome.applied) event(s) applied up to checkpoint \(outcome.checkpoint) (unchanged)"
        if !outcome.deadLettered.isEmpty {
            line += "; passed over \(outcome.deadLettered.count) with a dead letter (not applied by the daemon either): position(s) \(outcome.deadLettered.map(String.init).joined(separator: ", "))"
        }
        print(line)
    }
}
