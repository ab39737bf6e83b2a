import EventStore

/// One unit of work that an instance owns and runs: a whole projection, or one partition of a
/// partitioned one. Each unit has its own checkpoint row (named `name`), gap handling,
/// connection and lease.
public struct WorkUnit: Sendable {
    public let projection: any Projection
    /// Nil for an unpartitioned projection.
    public let partition: Partition?

    /// One of `count` partitions of a projection: the events whose aggregate hashes to `index`.
    public struct Partition: Sendable, Hashable, CustomStringConvertible {
        /// 0 ..< count.
        public let index: Int
        public let count: Int
        public init(index: Int, count: Int) {
            self.index = index
            self.count = count
        }
        /// `"k/N"`, as `status` shows it.
        public var description: String { "\(self.index)/\(self.count)" }
    }

    /// The units of `projection`: one, or one per partition.
    public static func units(of projection: any Projection) -> [WorkUnit] {
        Self.partitions(projection.partitions).map { WorkUnit(projection: projection, partition: $0) }
    }

    /// The partitions of a projection declared with `count` partitions: `[nil]` for one (or
    /// fewer), else one per index. Callers that know only the name and the count (the status
    /// report, the configuration) expand a projection into its units with this.
    public static func partitions(_ count: Int) -> [Partition?] {
        guard count > 1 else { return [nil] }
        return (0..<count).map { Partition(index: $0, count: count) }
    }

    /// The checkpoint's (and the lease's) identity: the projection's name, followed by
    /// `#k/N` for partition k of N.
    public var name: String { Self.name(self.projection.name, self.partition) }

    public static func name(_ projection: String, _ partition: Partition?) -> String {
        partition.map { "\(projection)#\($0)" } ?? projection
    }

    /// The partition a checkpoint name stands for (`name#k/N`), nil for an unpartitioned name.
    public static func parse(_ unitName: String) -> (projection: String, partition: Partition?) {
        guard let hash = unitName.lastIndex(of: "#") else { return (unitName, nil) }
        let suffix = unitName[unitName.index(after: hash)...].split(separator: "/")
        guard suffix.count == 2, let index = Int(suffix[0]), let count = Int(suffix[1]), count > 1, (0..<count).contains(index) else {
            return (unitName, nil)
        }
        return (String(unitName[..<hash]), Partition(index: index, count: count))
    }

    /// The SQL expression of an event's partition among `count` (the layout's type and id
    /// columns, `aggregate_type` and `aggregate_id` or `stream_type` and `stream_id`): the first
    /// 32 bits of md5(type || '/' || id), top bit cleared, modulo count. Stable across PostgreSQL
    /// versions and reproducible in any language; all events of one stream fall in one partition.
    public static func partitionExpression(count: String, layout: EventLayout) -> String {
        "(\(Self.partitionHashExpression(layout)) % \(count))"
    }

    /// The hash `partitionExpression` takes modulo the count: the shared reader reads it with
    /// each row, so that every partition of every projection tests its share in Swift.
    public static func partitionHashExpression(_ layout: EventLayout) -> String {
        "(('x' || substr(md5(\(layout.typeColumn) || '/' || \(layout.idColumn)), 1, 8))::bit(32)::int & 2147483647)"
    }
}
