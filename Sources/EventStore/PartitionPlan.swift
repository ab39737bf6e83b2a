/// Which ranges of a RANGE-partitioned events table `migrate` must create: the range holding
/// the log's head and the two after it, less those an existing partition already covers.
/// A pure decision over what the catalog lists; `PartitionMaintenance` reads and creates.
public struct PartitionPlan: Sendable, Hashable {
    /// One partition of the events table as the catalog lists it: `FOR VALUES FROM (from) TO
    /// (to)`, nil for `MINVALUE`/`MAXVALUE`. A `DEFAULT` partition is not listed.
    public struct Existing: Sendable, Hashable {
        public var name: String
        public var from: Int64?
        public var to: Int64?

        public init(name: String, from: Int64?, to: Int64?) {
            self.name = name
            self.from = from
            self.to = to
        }

        /// Whether every position of `range` falls in this partition.
        func covers(_ range: EventPartitioning.Range) -> Bool {
            (self.from ?? .min) <= range.first && range.last < (self.to ?? .max)
        }

        /// Whether some position of `range` falls in this partition.
        func overlaps(_ range: EventPartitioning.Range) -> Bool {
            (self.from ?? .min) <= range.last && range.first < (self.to ?? .max)
        }
    }

    /// A range to create overlaps a partition that does not cover it: the table's ranges were
    /// made with another size (or by another tool).
    public struct Mismatch: Error, Hashable {
        public var range: EventPartitioning.Range
        public var partition: Existing
    }

    /// How many ranges past the head's must exist.
    public static let rangesAhead: Int64 = 2

    /// The ranges to create, in order.
    public var missing: [EventPartitioning.Range]

    /// - Parameters:
    ///   - head: the highest position drawn so far (the table's highest, or the sequence's if
    ///     higher); 0 for an empty log.
    ///   - size: positions per range.
    ///   - existing: the table's partitions.
    /// - Throws: `Mismatch` naming the first partition a needed range would overlap.
    public init(head: Int64, size: Int64, existing: [Existing]) throws {
        let first = EventPartitioning.Range.holding(head, size: size).index
        let existing = existing.sorted { ($0.from ?? .min) < ($1.from ?? .min) }
        var missing: [EventPartitioning.Range] = []
        for index in first...(first + Self.rangesAhead) {
            let range = EventPartitioning.Range(index: index, size: size)
            if existing.contains(where: { $0.covers(range) }) { continue }
            if let clash = existing.first(where: { $0.overlaps(range) }) { throw Mismatch(range: range, partition: clash) }
            missing.append(range)
        }
        self.missing = missing
    }
}
