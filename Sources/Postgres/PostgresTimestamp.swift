import Foundation

/// A `timestamptz` exactly as PostgreSQL stores it: microseconds since 2000-01-01 00:00:00 UTC,
/// its binary wire format. `Date` holds a `Double` of seconds, which moves some stored values
/// by a microsecond on the way back; a `PostgresTimestamp` read and bound again is the same value.
public struct PostgresTimestamp: Sendable, Hashable, Comparable {
    /// Microseconds since 2000-01-01 00:00:00 UTC; `Int64.max` is `infinity`, `Int64.min` `-infinity`.
    public var microsecondsSince2000: Int64

    public init(microsecondsSince2000: Int64) {
        self.microsecondsSince2000 = microsecondsSince2000
    }

    /// The microsecond nearest to `date` (dates beyond PostgreSQL's range become ±infinity).
    public init(_ date: Date) {
        let micros = (date.timeIntervalSinceReferenceDate * 1_000_000).rounded()
        // Int64(micros) traps outside Int64's range; the range check also sends NaN to -infinity.
        if micros > -9e18 && micros < 9e18 {
            self.init(microsecondsSince2000: Int64(micros) + Self.referenceDateOffset)
        } else {
            self = micros > 0 ? .infinity : .negativeInfinity
        }
    }

    /// The current time, to the microsecond.
    public static var now: PostgresTimestamp { PostgresTimestamp(Date()) }

    public static let infinity = PostgresTimestamp(microsecondsSince2000: .max)
    public static let negativeInfinity = PostgresTimestamp(microsecondsSince2000: .min)

    /// The same instant as a `Date`: within a fraction of a microsecond (a `Double` has about
    /// 0.1 µs of resolution today), so `PostgresTimestamp(timestamp.date) == timestamp`.
    /// ±infinity become `Date.distantFuture` and `Date.distantPast`.
    public var date: Date {
        switch self {
        case .infinity: .distantFuture
        case .negativeInfinity: .distantPast
        default:
            Date(timeIntervalSinceReferenceDate: Double(self.microsecondsSince2000 - Self.referenceDateOffset) / 1_000_000)
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microsecondsSince2000 < rhs.microsecondsSince2000 }

    /// Microseconds from 2000-01-01 (PostgreSQL's epoch) to 2001-01-01 (Foundation's reference date).
    static let referenceDateOffset: Int64 = 366 * 86_400 * 1_000_000
}

extension PostgresTimestamp: PostgresEncodable {
    /// Binary `timestamptz`.
    public var postgresParameter: PostgresParameter {
        PostgresParameter(
            oid: PostgresType.timestamptz, format: .binary,
            bytes: withUnsafeBytes(of: self.microsecondsSince2000.bigEndian, Array.init))
    }
}

extension PostgresTimestamp: PostgresDecodable {
    /// `timestamptz` (or `timestamp`, read as UTC). Text results are parsed in ISO form
    /// (`DateStyle=ISO`, the default), exactly.
    public init(cell: PostgresCell) throws {
        let bytes = try cell.required("PostgresTimestamp")
        if cell.isBinary {
            guard cell.oid == PostgresType.timestamptz || cell.oid == PostgresType.timestamp, bytes.count == 8 else {
                throw cell.failure("not a timestamp")
            }
            self.init(microsecondsSince2000: Int64(bigEndian: bytes.loadUnaligned(as: Int64.self)))
        } else {
            guard let value = Self(isoText: cell.text) else {
                throw cell.failure("'\(cell.text)' is not an ISO timestamp")
            }
            self = value
        }
    }
}

extension PostgresTimestamp: CustomStringConvertible {
    /// ISO form in UTC, as PostgreSQL prints it with `TimeZone=UTC`: `2026-01-02 03:04:05.123457+00`.
    public var description: String {
        switch self {
        case .infinity: return "infinity"
        case .negativeInfinity: return "-infinity"
        default: break
        }
        let micros = self.microsecondsSince2000
        let perDay: Int64 = 86_400_000_000
        let days = micros >= 0 ? micros / perDay : (micros + 1) / perDay - 1  // floor division
        var rest = micros - days * perDay
        let (year, month, day) = Self.civil(fromDaysSince1970: days + Self.days1970To2000)
        let fraction = rest % 1_000_000
        rest /= 1_000_000
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var text = "\(pad(year > 0 ? year : 1 - year, 4))-\(pad(month, 2))-\(pad(day, 2)) "
        text += "\(pad(rest / 3600, 2)):\(pad(rest / 60 % 60, 2)):\(pad(rest % 60, 2))"
        if fraction != 0 {
            text += "." + String(pad(fraction, 6).reversed().drop(while: { $0 == "0" }).reversed())
        }
        return text + "+00" + (year > 0 ? "" : " BC")
    }
}

// MARK: - ISO text

extension PostgresTimestamp {
    /// Days from 1970-01-01 to 2000-01-01.
    static let days1970To2000: Int64 = 10_957

    /// Parses PostgreSQL's ISO output: `2026-01-02 03:04:05.123457+00` (offsets `+05:30`, `-03:30:15`,
    /// none for `timestamp`, more than four year digits, ` BC`, `infinity`, `-infinity`).
    init?(isoText text: String) {
        switch text {
        case "infinity":
            self = .infinity
            return
        case "-infinity":
            self = .negativeInfinity
            return
        default: break
        }
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.number(minDigits: 4), scanner.skip("-"), let month = scanner.number(digits: 2),
            scanner.skip("-"), let day = scanner.number(digits: 2), scanner.skip(" ") || scanner.skip("T"),
            let hour = scanner.number(digits: 2), scanner.skip(":"), let minute = scanner.number(digits: 2),
            scanner.skip(":"), let second = scanner.number(digits: 2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var micros: Int64 = 0
        if scanner.skip(".") {
            var scale: Int64 = 100_000
            var digits = 0
            while let digit = scanner.digit() {
                micros += digit * scale
                scale /= 10
                digits += 1
            }
            guard digits > 0, digits <= 6 else { return nil }
        }
        var offset: Int64 = 0
        if let sign: Int64 = scanner.skip("+") ? 1 : scanner.skip("-") ? -1 : nil {
            guard let hours = scanner.number(digits: 2) else { return nil }
            var seconds = hours * 3600
            for factor: Int64 in [60, 1] where scanner.skip(":") {
                guard let value = scanner.number(digits: 2) else { return nil }
                seconds += value * factor
            }
            offset = sign * seconds
        }
        let astronomicalYear = scanner.skip(" BC") ? 1 - year : year
        guard scanner.atEnd else { return nil }
        let days = Self.daysSince1970(year: astronomicalYear, month: month, day: day) - Self.days1970To2000
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else { return nil }
        self.init(microsecondsSince2000: scaled + micros)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date of a day since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civil(fromDaysSince1970 days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Reads ASCII digits and literals from the front of a byte array.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { self.index == self.bytes.count }

        mutating func skip(_ literal: String) -> Bool {
            let literal = Array(literal.utf8)
            guard self.bytes.count - self.index >= literal.count,
                self.bytes[self.index..<self.index + literal.count].elementsEqual(literal)
            else { return false }
            self.index += literal.count
            return true
        }

        mutating func digit() -> Int64? {
            guard self.index < self.bytes.count, (48...57).contains(self.bytes[self.index]) else { return nil }
            defer { self.index += 1 }
            return Int64(self.bytes[self.index] - 48)
        }

        /// Exactly `digits` digits.
        mutating func number(digits: Int) -> Int64? {
            let start = self.index
            var value: Int64 = 0
            for _ in 0..<digits {
                guard let digit = self.digit() else {
                    self.index = start
                    return nil
                }
                value = value * 10 + digit
            }
            return value
        }

        /// At least `minDigits` digits, as many as there are (up to 9).
        mutating func number(minDigits: Int) -> Int64? {
            let start = self.index
            var value: Int64 = 0
            while self.index - start < 9, let digit = self.digit() { value = value * 10 + digit }
            guard self.index - start >= minDigits else {
                self.index = start
                return nil
            }
            return value
        }
    }
}
