import Foundation
import Projections

/// How `dead-letters list` prints dead letters: a table for people, or JSON.
enum DeadLetterReport {
    static func json(_ letters: [DeadLetter]) -> String {
        JSONOutput.text(List(deadLetters: letters.map(Entry.init)))
    }

    /// `{"dead_letters": [entry, …]}`.
    struct List: Encodable {
        var deadLetters: [Entry]
        enum CodingKeys: String, CodingKey { case deadLetters = "dead_letters" }
    }

    /// One dead letter, every key present (`null` where there is no value); times in ISO 8601 UTC.
    struct Entry: Encodable {
        var letter: DeadLetter

        enum CodingKeys: String, CodingKey {
            case projection, partition, position, status, attempts, error
            case eventID = "event_id", eventType = "event_type", aggregateType = "aggregate_type", aggregateID = "aggregate_id"
            case failedAt = "failed_at", lastFailedAt = "last_failed_at"
        }

        func encode(to encoder: any Encoder) throws {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.letter.projection, forKey: .projection)
            try container.encode(self.letter.partition?.description, forKey: .partition)
            try container.encode(self.letter.position, forKey: .position)
            try container.encode(self.letter.eventID, forKey: .eventID)
            try container.encode(self.letter.eventType, forKey: .eventType)
            try container.encode(self.letter.aggregate?.type, forKey: .aggregateType)
            try container.encode(self.letter.aggregate?.id, forKey: .aggregateID)
            try container.encode(self.letter.status.rawValue, forKey: .status)
            try container.encode(self.letter.attempts, forKey: .attempts)
            try container.encode(self.letter.error, forKey: .error)
            try container.encode(formatter.string(from: self.letter.failedAt), forKey: .failedAt)
            try container.encode(self.letter.lastFailedAt.map(formatter.string(from:)), forKey: .lastFailedAt)
        }
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
