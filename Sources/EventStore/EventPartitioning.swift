/// How the events table is partitioned: not at all, or natively by RANGE on `global_position`
/// in ranges of `size` positions, as eventsalsa/store's generator lays them out.
public enum EventPartitioning: Sendable, Hashable {
    case none
    /// `initial` ranges are created up front; `migrate` keeps two ranges ahead of the head.
    case native(size: Int64, initial: Int)

    /// eventsalsa/store's defaults: ranges of 10,000,000 positions, 4 created up front.
    public static let defaultSize: Int64 = 10_000_000
    public static let defaultInitial = 4

    /// The `index`th range (from 0): positions `index * size + 1` up to `(index + 1) * size`.
    public struct Range: Sendable, Hashable {
        public var index: Int64
        public var size: Int64

        public init(index: Int64, size: Int64) {
            self.index = index
            self.size = size
        }

        /// The first position in the range (the bound `FROM`, inclusive).
        public var first: Int64 { self.index * self.size + 1 }
        /// The last position in the range; the bound `TO` is one past it (exclusive).
        public var last: Int64 { (self.index + 1) * self.size }

        /// The range that holds `position` (1 or more).
        public static func holding(_ position: Int64, size: Int64) -> Range {
            Range(index: (max(position, 1) - 1) / size, size: size)
        }

        /// `events_p0000000001_p0010000000`: the table's name, the first and the last position,
        /// ten digits each (eventsalsa/store's naming).
        public func partitionName(of table: String) -> String {
            func padded(_ value: Int64) -> String {
                let digits = String(value)
                return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
            }
            return "\(table)_p\(padded(self.first))_p\(padded(self.last))"
        }
    }
}
