/// How far a checkpoint may move over a batch of visible positions: the contiguous prefix from
/// the checkpoint, passing over positions already proved dead. Pure arithmetic.
struct Frontier: Equatable {
    /// The new checkpoint: every position up to it is visible or dead.
    var position: Int64
    /// Dead ranges passed over on the way (audited).
    var skipped: [DeadRange]
    /// Missing positions below the highest visible one that are not known dead, if the
    /// frontier stopped at the first of them. They go to the gap resolver.
    var unresolved: [ClosedRange<Int64>]

    var isBlocked: Bool { !self.unresolved.isEmpty }

    /// - Parameters:
    ///   - checkpoint: the last position applied.
    ///   - visible: the positions read, ascending, all above `checkpoint`.
    ///   - dead: positions proved dead (or given up on).
    static func advance(from checkpoint: Int64, visible: [Int64], dead: DeadPositions) -> Frontier {
        var frontier = Frontier(position: checkpoint, skipped: [], unresolved: [])
        var blockedAt: Int64?
        var expected = checkpoint + 1
        for position in visible where position >= expected {
            if position > expected {
                // A hole expected...position-1: pass what is known dead, stop at the rest.
                var low = expected
                let high = position - 1
                while low <= high {
                    if let range = dead.range(containing: low) {
                        let end = min(range.positions.upperBound, high)
                        if blockedAt == nil {
                            frontier.skipped.append(DeadRange(positions: low...end, reason: range.reason))
                            frontier.position = end
                        }
                        low = end + 1
                    } else {
                        let end = min(dead.nextStart(after: low).map { $0 - 1 } ?? high, high)
                        frontier.unresolved.append(low...end)
                        if blockedAt == nil { blockedAt = low }
                        low = end + 1
                    }
                }
            }
            if blockedAt == nil { frontier.position = position }
            expected = position + 1
        }
        return frontier
    }
}

/// Why a position was passed over without an event.
enum GapReason: String, Sendable {
    /// Every transaction that could have owned it ended and it never became visible.
    case aborted
    /// `gap_skip_after` elapsed while its owner might still commit.
    case timeout
}

struct DeadRange: Equatable, Sendable {
    var positions: ClosedRange<Int64>
    var reason: GapReason
}

/// Positions known never to appear, as sorted, non-overlapping ranges.
struct DeadPositions: Sendable, Equatable {
    private(set) var ranges: [DeadRange] = []

    mutating func insert(_ positions: ClosedRange<Int64>, reason: GapReason) {
        // Keep the ranges disjoint; a new range only covers what is not there yet.
        var low = positions.lowerBound
        while low <= positions.upperBound {
            if let existing = self.range(containing: low) {
                low = existing.positions.upperBound + 1
                continue
            }
            let end = min(self.nextStart(after: low).map { $0 - 1 } ?? positions.upperBound, positions.upperBound)
            let index = self.ranges.firstIndex { $0.positions.lowerBound > low } ?? self.ranges.endIndex
            self.ranges.insert(DeadRange(positions: low...end, reason: reason), at: index)
            low = end + 1
        }
    }

    func range(containing position: Int64) -> DeadRange? {
        // Binary search: the last range starting at or below the position.
        var low = 0
        var high = self.ranges.count
        while low < high {
            let middle = (low + high) / 2
            if self.ranges[middle].positions.lowerBound <= position { low = middle + 1 } else { high = middle }
        }
        guard low > 0, self.ranges[low - 1].positions.contains(position) else { return nil }
        return self.ranges[low - 1]
    }

    /// The start of the first range above `position`.
    func nextStart(after position: Int64) -> Int64? {
        self.ranges.first { $0.positions.lowerBound > position }?.positions.lowerBound
    }

    /// Forgets ranges entirely below `position` (they can matter again only after a rewind,
    /// and then the resolver proves them dead again in one step).
    mutating func forget(below position: Int64) {
        self.ranges.removeAll { $0.positions.upperBound < position }
    }
}
