/// Parses the configuration's durations: `250ms`, `1s`, `5m`, `1h` (a whole number and a unit).
public enum DurationParser {
    /// The duration `text` names; nil when it is not one, or too long to represent (more than
    /// about 292 years: every key's own bound is far below that).
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingSpaces
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = Int64(digits) else { return nil }
        let seconds: (Int64) -> Duration? = { factor in
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : .seconds(product)
        }
        switch trimmed.dropFirst(digits.count) {
        case "ms": return .milliseconds(value)
        case "s": return .seconds(value)
        case "m": return seconds(60)
        case "h": return seconds(3600)
        default: return nil
        }
    }

    /// Whether `text` has a duration's form (digits and a unit), whatever its size.
    static func isWellFormed(_ text: String) -> Bool {
        let trimmed = text.trimmingSpaces
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        return !digits.isEmpty && ["ms", "s", "m", "h"].contains(String(trimmed.dropFirst(digits.count)))
    }

    /// The shortest exact form, for messages and status (`1500ms`, `30s`, `5m`).
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
