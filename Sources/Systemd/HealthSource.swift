/// What a `HealthReporter` reports on: a one-line summary for `STATUS=` and whether the work it
/// watches is still going round (the watchdog is fed only while it is).
public protocol HealthSource: Sendable {
    /// One line for `STATUS=` (and `systemctl status`).
    func summary() -> String
    /// Whether every worker loop showed life within `interval`.
    func isResponsive(within interval: Duration) -> Bool
}
