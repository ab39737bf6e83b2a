/// One projection's checkpoint row as the daemon left it (what `projectionist status` shows).
public struct CheckpointRecord: Sendable, Equatable {
    public var name: String
    public var position: Int64
    /// The stored `ProjectionState` raw value; nil before the first runner wrote one.
    public var state: String?
    public var lastError: String?
    /// How long ago the owning runner last wrote the row; nil if it never did.
    public var heartbeatAge: Duration?
    /// How long the owner's batch transaction has been open, when one is (its session holds the
    /// projection's lock); nil between batches or when the server does not show it to this role.
    public var batchRunning: Duration?

    public init(
        name: String, position: Int64, state: String?, lastError: String?, heartbeatAge: Duration?, batchRunning: Duration? = nil
    ) {
        self.name = name
        self.position = position
        self.state = state
        self.lastError = lastError
        self.heartbeatAge = heartbeatAge
        self.batchRunning = batchRunning
    }
}
