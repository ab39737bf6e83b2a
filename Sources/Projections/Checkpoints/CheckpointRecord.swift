/// One unit's checkpoint row as the daemon left it (what `projectionist status` shows).
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
    /// The instance holding the unit's lease; nil when no instance does.
    public var owner: Owner?
    /// Set when the projection is retired: the successor that took over its views.
    public var successor: String?
    /// The owner's rate of applying events lately.
    public var eventsPerSecond: Double?

    /// An instance holding a unit's lease (`worker_nodes` joined to `consumer_assignments`).
    public struct Owner: Sendable, Equatable {
        /// `worker_id`.
        public var instance: String
        public var hostname: String?
        public var pid: Int32?
        /// Until the lease runs out (negative: expired), by the server's clock.
        public var leaseExpiresIn: Duration?
        /// The fencing token of the owner's lease.
        public var token: Int64

        public init(instance: String, hostname: String?, pid: Int32?, leaseExpiresIn: Duration?, token: Int64) {
            self.instance = instance
            self.hostname = hostname
            self.pid = pid
            self.leaseExpiresIn = leaseExpiresIn
            self.token = token
        }
    }

    public init(
        name: String, position: Int64, state: String?, lastError: String?, heartbeatAge: Duration?, batchRunning: Duration? = nil,
        owner: Owner? = nil, successor: String? = nil, eventsPerSecond: Double? = nil
    ) {
        self.name = name
        self.position = position
        self.state = state
        self.lastError = lastError
        self.heartbeatAge = heartbeatAge
        self.batchRunning = batchRunning
        self.owner = owner
        self.successor = successor
        self.eventsPerSecond = eventsPerSecond
    }
}
