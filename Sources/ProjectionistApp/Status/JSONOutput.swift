import Foundation

/// How the daemon writes JSON for tools (`status --json`, `/status`, `/readyz`, `dead-letters
/// list --json`): from `Encodable` types, keys sorted, slashes as they are. The types encode an
/// absent value as `null`, so that every key is always there.
enum JSONOutput {
    static func text(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every value is a count, a name or a finite rate; a failure here is a programming error.
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    /// A duration or rate in seconds, to one decimal.
    static func tenths(_ value: Double) -> Double { (value * 10).rounded() / 10 }
}
