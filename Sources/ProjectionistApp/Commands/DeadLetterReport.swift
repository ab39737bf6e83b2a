import Foundation
import Projections

/// How `dead-letters list` prints dead letters: a table for people, or JSON.
enum DeadLetterReport {
    static func json(_ letters: [DeadLetter]) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let entries: [[String: Any]] = letters.map { letter in
            [
                "projection": letter.projection, "partition": letter.partition?.description ?? NSNull(), "position": letter.position,
                "event_id": letter.eventID ?? NSNull(), "event_type": letter.eventType ?? NSNull(),
                "aggregate_type": letter.aggregate?.type ?? NSNull(), "aggregate_id": letter.aggregate?.id ?? NSNull(),
                "status": letter.status.rawValue, "attempts": letter.attempts, "error": letter.error,
                "failed_at": formatter.string(from: letter.failedAt),
                "last_failed_at": letter.lastFailedAt.map(formatter.string(from:)) ?? NSNull(),
            ]
        }
        let data = try! JSONSerialization.data(withJSONObject: ["dead_letters": entries], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func table(_ letters: [DeadLetter], projection: String?) -> String {
        guard !letters.isEmpty else { return projection.map { "no dead letters for projection \($0)" } ?? "no dead letters" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        let header = ["PROJECTION", "POSITION", "AGGREGATE", "EVENT TYPE", "STATUS", "ATTEMPTS", "FAILED AT", "ERROR"]
        let rows = letters.map { letter in
            [
                letter.partition.map { "\(letter.projection) \($0)" } ?? letter.projection, String(letter.position),
                letter.aggregate?.description ?? "-", letter.eventType ?? "-", letter.status.rawValue, String(letter.attempts),
                formatter.string(from: letter.lastFailedAt ?? letter.failedAt), letter.error,
            ]
        }
        // Every column padded to its widest cell but the last (the error, as long as it is).
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let right: Set<Int> = [1, 5]
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                guard column < cells.count - 1 else { return cell }
                let space = String(repeating: " ", count: widths[column] - cell.count)
                return right.contains(column) ? space + cell : cell + space
            }.joined(separator: "  ")
        }
        let parked = Set(letters.filter { $0.status == .parked }.compactMap { letter in letter.aggregate.map { "\(letter.unit) \($0)" } }).count
        let summary = "\(letters.count) dead letter(s)" + (parked > 0 ? ", \(parked) parked aggregate(s)" : "")
        return ([line(header)] + rows.map(line) + [summary]).joined(separator: "\n")
    }
}
