import Foundation
import Synchronization

/// What a projection is doing, as `projectionist status` and `STATUS=` report it.
public enum ProjectionState: String, Sendable, Codable, CaseIterable {
    case idle
    case catchingUp = "catching_up"
    case waitingOnGap = "waiting_on_gap"
    case failed
    case standby
    case stopped
    /// A successor took over the projection's published views; its runner stopped.
    case retired
    case unknown
}

/// The transaction a projection waits for: the backend pid that holds the gap and since when.
public struct GapHolder: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var since: Date?
    public var description: String {
        "pid \(self.pid)" + (self.since.map { " since \(ISO8601DateFormatter().string(from: $0))" } ?? "")
    }
}

/// A snapshot of one runner.
public struct ProjectionStatus: Sendable {
    public var name: String
    public var position: Int64 = 0
    /// The head as the runner last read it (0 until then: see `headKnown`).
    public var head: Int64 = 0 { didSet { self.headKnown = true } }
    /// Whether the runner has read the head yet: before, `lag` means nothing (no lag is exported).
    public private(set) var headKnown = false
    public var lag: Int64 { max(0, self.head - self.position) }
    public var state: ProjectionState = .catchingUp
    public var lastError: String?
    /// The first missing position waited on, and who may still commit it.
    public var gapPosition: Int64?
    public var gapHolder: GapHolder?
    /// When the runner's loop last went round (progress, idle wake-up, retry, gap re-check).
    public var lastBeat: ContinuousClock.Instant = .now
    /// Events applied since start.
    public var applied: Int64 = 0
    /// Events applied per second lately (nil before the first batch, 0 when idle).
    public var eventsPerSecond: Double?
    /// Age of the oldest committed event not applied yet (0 when caught up), as last sampled.
    public var lagSeconds: Double?
    /// Aggregates parked (`on_error: park`) as the runner last read them.
    public var parkedAggregates = 0
    /// Since when the runner waits on the server for a batch (or an isolation, retry, dead
    /// letter); nil between them. A runner waiting on the server is alive, however long.
    public var busySince: ContinuousClock.Instant?
    /// Since when the runner waits for a connection from the pool (the other units hold the
    /// budget); nil otherwise. Such a runner is alive too.
    public var waitingForConnectionSince: ContinuousClock.Instant?
    /// The runner's loop ended (shutdown, retired, or its checkpoint row was deleted): it beats
    /// no more, and the watchdog does not wait for it.
    public var ended = false

    public init(name: String) { self.name = name }

    /// One phrase for logs and status: "waiting on gap 42 held by pid 7 since ...".
    public var summary: String {
        switch self.state {
        case .waitingOnGap:
            "waiting on gap \(self.gapPosition.map(String.init) ?? "?")" + (self.gapHolder.map { " held by \($0)" } ?? "")
        case .failed: "failed: \(self.lastError ?? "unknown error")"
        default: self.state.rawValue
        }
    }
}

/// The live status of every runner, shared between the runners, the health reporter and tests.
public final class StatusBoard: Sendable {
    private let statuses: Mutex<[String: ProjectionStatus]>

    public init(names: [String] = []) {
        self.statuses = Mutex(Dictionary(uniqueKeysWithValues: names.map { ($0, ProjectionStatus(name: $0)) }))
    }

    public func update(_ name: String, _ change: (inout ProjectionStatus) -> Void) {
        self.statuses.withLock { statuses in
            var status = statuses[name] ?? ProjectionStatus(name: name)
            change(&status)
            status.lastBeat = .now
            statuses[name] = status
        }
    }

    /// Changes a runner's status from outside its loop (no beat: only the runner shows it is alive).
    func set(_ name: String, _ change: (inout ProjectionStatus) -> Void) {
        self.statuses.withLock { statuses in
            guard var status = statuses[name] else { return }
            change(&status)
            statuses[name] = status
        }
    }

    public func status(_ name: String) -> ProjectionStatus? { self.statuses.withLock { $0[name] } }

    /// Every status, by name.
    public var all: [ProjectionStatus] { self.statuses.withLock { $0.values.sorted { $0.name < $1.name } } }

    /// Whether every runner's loop went round within `interval`, waits on the server, or ended
    /// (the watchdog's condition: a long statement is not a hang, a stopped unit is no hang).
    public func allResponsive(within interval: Duration) -> Bool {
        let now = ContinuousClock.now
        return self.statuses.withLock { $0.values.allSatisfy {
                $0.ended || $0.busySince != nil || $0.waitingForConnectionSince != nil || now - $0.lastBeat <= interval
            } }
    }

    /// The runners whose batch has been running longer than `threshold`, with how long, by name.
    public func slowBatches(longerThan threshold: Duration) -> [(name: String, running: Duration)] {
        let now = ContinuousClock.now
        return self.statuses.withLock { statuses in
            statuses.values.compactMap { status in
                guard let since = status.busySince, now - since > threshold else { return nil }
                return (status.name, now - since)
            }.sorted { $0.name < $1.name }
        }
    }

    /// A one-line summary: units owned, max lag, gap waits, failures.
    public var summaryLine: String { self.summaryLine(slowBatchWarn: nil) }

    /// The summary line, naming batches running longer than `slowBatchWarn` (when given).
    public func summaryLine(slowBatchWarn: Duration?) -> String {
        let all = self.all
        // A unit another instance runs (standby) is not this instance's to report.
        let owned = all.filter { $0.state != .standby && $0.state != .retired }
        let lag = owned.map(\.lag).max() ?? 0
        let waiting = owned.filter { $0.state == .waitingOnGap }
        let failed = owned.filter { $0.state == .failed }
        let lagSeconds = owned.compactMap(\.lagSeconds).max() ?? 0
        var line = "owns \(owned.count) of \(all.count) units, max lag \(lag) (\(Int(lagSeconds.rounded(.up))) s)"
        line += ", \(waiting.count) waiting on gaps"
        if let first = waiting.first { line += " (\(first.name): \(first.summary))" }
        line += ", \(failed.count) failed"
        if let first = failed.first { line += " (\(first.name))" }
        if let slowBatchWarn, let slow = self.slowBatches(longerThan: slowBatchWarn).first {
            line += ", slow batch: \(slow.name) running \(Int(slow.running.components.seconds))s"
        }
        return line
    }
}
