#if canImport(CSystemd)
import CSystemd
#endif
import Glibc

/// The service manager's notification protocol (`sd_notify`). Without `NOTIFY_SOCKET` every
/// call is a no-op. `HealthReporter` decides what to send.
public enum Notifier {
    /// Sends one or more `KEY=value` lines.
    public static func notify(_ state: String) {
        #if canImport(CSystemd)
        _ = sd_notify(0, state)
        #endif
    }

    /// The watchdog timeout the manager expects pings within (`WATCHDOG_USEC`, honouring
    /// `WATCHDOG_PID` as `sd_watchdog_enabled` does); nil when the watchdog is off.
    public static var watchdogTimeout: Duration? {
        #if canImport(CSystemd)
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
        #else
        return nil
        #endif
    }

    /// `text` with its line breaks as spaces: a notification value is one line.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" ? " " : $0 })
    }
}
