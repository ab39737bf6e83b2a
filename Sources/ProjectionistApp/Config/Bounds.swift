/// The bounds of every duration and count key (docs/reference.md lists them): a degenerate value
/// (a poll interval of 0 spins a core) or one whose arithmetic overflows is refused at start.
enum Bounds {
    static let startupTimeout: ClosedRange<Duration> = .seconds(1)...hours(24)
    static let batchSize: ClosedRange<Int> = 1...100_000
    static let pollInterval: ClosedRange<Duration> = .milliseconds(1)...hours(1)
    static let maxPollInterval: ClosedRange<Duration> = .milliseconds(1)...hours(1)
    static let gapWarnAfter: ClosedRange<Duration> = .milliseconds(1)...hours(24)
    static let gapSkipAfter: ClosedRange<Duration> = .seconds(1)...hours(168)
    static let slowBatchWarn: ClosedRange<Duration> = .milliseconds(1)...hours(24)
    static let leaseTTL: ClosedRange<Duration> = .seconds(2)...hours(1)
    static let maxConnections: ClosedRange<Int> = 3...10_000
    static let retryParked: ClosedRange<Duration> = .seconds(1)...hours(1)
    static let partitions: ClosedRange<Int> = 1...256
    /// Positions per range of a partitioned events table (`store.partition_size`, `--partition-size`).
    static let partitionSize: ClosedRange<Int> = 1...Int(Int64.max / 1024)
    static let initialPartitions: ClosedRange<Int> = 1...1000
    static let keyCacheSize: ClosedRange<Int> = 1...10_000_000
    static let keyCacheLifetime: ClosedRange<Duration> = .seconds(1)...hours(24)

    static func hours(_ count: Int64) -> Duration { .seconds(count * 3600) }
}
