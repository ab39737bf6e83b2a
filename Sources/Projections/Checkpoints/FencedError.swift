/// A batch transaction found a newer fencing token on its unit's checkpoint row: another
/// instance took the unit over (this one's lease ran out or was handed on). The transaction is
/// rolled back and the runner stands by.
public struct FencedError: Error, CustomStringConvertible, Sendable {
    public var unit: String
    /// The token this runner held.
    public var token: Int64

    public var description: String {
        "unit '\(self.unit)' was taken over by another instance (this one's fencing token \(self.token) is stale); standing by"
    }
}

/// A batch transaction found its projection retired: a successor (`replaces`) took over its
/// published views. The runner stops; `projectionist drop` removes the projection's tables.
public struct RetiredError: Error, CustomStringConvertible, Sendable {
    public var unit: String
    public var successor: String?

    public var description: String {
        "unit '\(self.unit)' is retired: \(self.successor.map { "'\($0)'" } ?? "its successor") took over its published views"
    }
}

/// A runner's transaction found no checkpoint row for its unit: `reset` into another partition
/// layout or `drop` deleted it while this instance ran. The runner never recreates a row (that
/// would re-apply every event into a read model just truncated): it stops the unit.
public struct CheckpointDeletedError: Error, CustomStringConvertible, Sendable {
    public var unit: String

    public var description: String {
        "checkpoint row of '\(self.unit)' was deleted (reset into another partition layout, or drop?); this unit stopped: restart the daemon with the new configuration"
    }
}
