import ArgumentParser
import EventStore
import Foundation
import Logging
import Postgres
import Projections

/// `projectionist wait NAME... [--timeout D]`: blocks until the projections have caught up with
/// the head as it was when called (exit 0), or the timeout passed (exit 75). A projection that
/// is `failed` before it got there ends the wait at once (exit 1) with its last error.
struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until projections have caught up with the head as it was when called (a progress bar on a terminal).")

    @Argument(help: "The projections' names.") var names: [String]
    @Option(help: "Give up after this long (e.g. 90s, 10m): exit 75. Default: wait for as long as it takes.")
    var timeout: String?
    @OptionGroup var options: ConfigOption

    func validate() throws {
        guard !self.names.isEmpty else { throw ValidationError("name at least one projection") }
        if let timeout, DurationParser.parse(timeout) == nil {
            throw ValidationError("--timeout '\(timeout)' is not a duration (250ms, 1s, 5m, 1h)")
        }
    }

    func run() async throws {
        try await withExitCodes {
            let config = try self.options.load()
            try config.requireProjections(self.names)
            let connection = try await config.connect(for: "wait")
            let report = { try await StatusReport.read(config, on: connection) }
            let target = try await report().head
            let deadline = self.timeout.flatMap(DurationParser.parse).map { ContinuousClock.now + $0 }
            let terminal = isatty(STDOUT_FILENO) == 1
            var starts: [String: Int64] = [:]
            var lastLine = ContinuousClock.now - .seconds(60)
            while true {
                let rows = try await report().rows
                let progress = self.names.map { name in
                    let units = rows.filter { $0.name == name }
                    let position = units.map(\.position).min() ?? 0
                    let start = starts[name] ?? position
                    starts[name] = start
                    let rates = units.compactMap(\.eventsPerSecond)
                    return WaitProgress(
                        name: name, start: start, position: position, target: target,
                        eventsPerSecond: rates.isEmpty ? nil : rates.min().map { $0 * Double(units.count) },
                        retired: !units.isEmpty && units.allSatisfy { $0.state == .retired })
                }
                let done = progress.allSatisfy(\.done)
                let timedOut = deadline.map { ContinuousClock.now >= $0 } ?? false
                if terminal {
                    let line = progress.map { $0.bar() }.joined(separator: "  |  ")
                    // Redraw the line in place (carriage return, erase to the end).
                    FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line + (done || timedOut ? "\n" : "")).utf8))
                } else if done || timedOut || ContinuousClock.now - lastLine >= .seconds(5) {
                    // Unbuffered: a deploy log shows each line as it comes.
                    FileHandle.standardOutput.write(Data(progress.map { $0.detail + "\n" }.joined().utf8))
                    lastLine = .now
                }
                if done { return }
                let waiting = Set(progress.filter { !$0.done }.map(\.name))
                if let failure = Self.failure(rows.filter { waiting.contains($0.name) }) {
                    if terminal { FileHandle.standardOutput.write(Data("\n".utf8)) }
                    printError("error: \(failure)")
                    throw ExitStatus.failure.exitCode
                }
                if timedOut {
                    printError("error: timed out after \(self.timeout ?? "") waiting for \(self.names.joined(separator: ", ")) to reach \(target)")
                    throw ExitStatus.timedOut.exitCode
                }
                try await Task.sleep(for: .milliseconds(terminal ? 200 : 500))
            }
        }
    }

    /// Why waiting on is pointless: the first of `rows` (units of projections not there yet) in
    /// state `failed`, named with its position and last error; nil when none is.
    static func failure(_ rows: [StatusReport.Row]) -> String? {
        guard let row = rows.first(where: { $0.state == .failed }) else { return nil }
        let unit = row.partition.map { "\(row.name) (partition \($0))" } ?? row.name
        return "projection \(unit) is failed at position \(row.position): \(row.error ?? "no error recorded")."
            + " It retries on its own; fix the cause (see `projectionist status`), or wait again once it runs"
    }
}
