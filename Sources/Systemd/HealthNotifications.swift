/// The reporter's decisions, as a value: on each tick, which notifications to send. Time comes in
/// as an argument, so the rules are tested without a clock or a socket.
///
/// - `STATUS=` when the summary differs from the last one sent (the first goes with `READY=1`).
/// - `WATCHDOG=1` at most every half interval, and only while the source is responsive: a hung
///   loop starves the watchdog and the service manager restarts the daemon.
public struct HealthNotifications: Sendable {
    /// `WATCHDOG_USEC`, or nil when the watchdog is off.
    public let watchdog: Duration?
    private var lastStatus: String?
    private var lastPing: ContinuousClock.Instant?

    public init(watchdog: Duration?) { self.watchdog = watchdog }

    /// How often the reporter should look: a quarter of the watchdog interval, at most a second.
    public var tick: Duration { min(self.watchdog.map { $0 / 4 } ?? .seconds(1), .seconds(1)) }

    /// The `READY=1` message, carrying the first status.
    public mutating func ready(status: String) -> String {
        self.lastStatus = status
        return "READY=1\nSTATUS=\(Notifier.oneLine(status))"
    }

    /// The notifications due at `now` (one datagram; nil when nothing is due).
    /// - Parameter isResponsive: asked only when a ping is due, with half the watchdog interval.
    public mutating func due(at now: ContinuousClock.Instant, status: String, isResponsive: (Duration) -> Bool) -> String? {
        var lines: [String] = []
        if status != self.lastStatus {
            lines.append("STATUS=\(Notifier.oneLine(status))")
            self.lastStatus = status
        }
        if let watchdog, self.lastPing.map({ now - $0 >= watchdog / 2 }) ?? true, isResponsive(watchdog / 2) {
            lines.append("WATCHDOG=1")
            self.lastPing = now
        }
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }
}
