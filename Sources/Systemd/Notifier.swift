#if canImport(CSystemd)
import CSystemd
#endif
import Glibc

/// The service manager's notification protocol (`sd_notify`): READY, STATUS, WATCHDOG,
/// STOPPING, RELOADING. Without `NOTIFY_SOCKET` every call is a no-op.
public enum Notifier {
    /// Sends one or more `KEY=value` lines.
    public static func notify(_ state: String) {
        #if canImport(CSystemd)
        _ = sd_notify(0, state)
        #endif
    }

    public static func ready(status: String? = nil) {
        self.notify("READY=1" + (status.map { "\nSTATUS=\(Self.oneLine($0))" } ?? ""))
    }

    public static func status(_ text: String) { self.notify("STATUS=\(Self.oneLine(text))") }
    public static func watchdog() { self.notify("WATCHDOG=1") }
    public static func stopping() { self.notify("STOPPING=1") }

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

    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" ? " " : $0 })
    }
}
