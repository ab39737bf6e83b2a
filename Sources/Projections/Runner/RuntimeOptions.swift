import Encryption
import EventStore
import Foundation

/// How the runtime behaves; the defaults are docs/reference.md's.
public struct RuntimeOptions: Sendable {
    /// Table names and the notify channel (nil or empty: polling only).
    public var schema = Schema()
    /// Identifies this runtime instance in what it writes (the `worker_id` of gap audit rows,
    /// as eventsalsa/worker records its worker's id). A new random UUID unless set.
    public var instanceID = UUID()
    /// Decrypts the payloads of projections with `decryptsPayloads`; required when one has it.
    public var decryptor: PayloadDecryptor?
    /// Events read per batch transaction.
    public var batchSize = 1000
    /// A scoped projection scans this many times `batchSize` positions per batch (it still
    /// applies at most `batchSize` events per transaction).
    public var scopedScanFactor = 10
    /// While catching up, one transaction applies up to this many batches (read ahead on a
    /// second connection) or as many as fit in `transactionTimeBudget`: fewer commits, same memory.
    public var batchesPerTransaction = 8
    public var transactionTimeBudget: Duration = .milliseconds(500)
    /// Within such a transaction, send a `StatementProjection`'s next batch before reading the
    /// previous batch's results (several pipelines in flight on the connection); false: read each
    /// batch's results before sending the next. The benchmark measures both side by side.
    public var pipelinesInFlight = true
    /// Whether the units of a worker read the log together (`SharedLog`): units at the same
    /// positions share one read of each event, each taking what is in its scope. A worker with
    /// one unit reads on its own (with its scoped read and read-ahead).
    public var sharedReading = true
    /// Rows per shared read; nil: 4 × `batchSize`.
    public var sharedReadChunk: Int?
    /// The most rows the shared window holds (its memory); nil: 8 × the chunk.
    public var sharedWindowRows: Int?
    /// How long units at the end of a full shared window wait for its slowest unit to move
    /// before the window goes on without it (that unit then reads its own range).
    public var sharedWindowPatience: Duration = .seconds(5)
    /// First idle poll delay; doubles while idle up to `maxPollInterval`; reset on progress or wakeup.
    public var pollInterval: Duration = .seconds(1)
    public var maxPollInterval: Duration = .seconds(30)
    /// How often one shared probe (`max(global_position)`) checks for new events and wakes the
    /// runners when the head moved; nil turns it off (then only NOTIFY and the runners' own
    /// polls wake them). It costs one index lookup per interval for all projections together.
    public var headPollInterval: Duration? = .milliseconds(50)
    /// Warn (log, status) when a gap has been waited on this long.
    public var gapWarnAfter: Duration = .seconds(30)
    /// Skip a gap whose owner may still commit after this long (audited `timeout`); nil: never.
    public var gapSkipAfter: Duration?
    /// A batch (its transaction, from the first read to the commit) running longer than this is
    /// reported in the log, in `STATUS=` and in `projectionist status`. Only reported: a slow
    /// statement is not a hang, so it never stops the watchdog pings.
    public var slowBatchWarn: Duration = .seconds(10)
    /// How often a blocked projection re-checks the gap's possible owners.
    public var gapRecheckInterval: Duration = .milliseconds(10)
    /// Retries of a failing event before `onError` applies, with exponential delays from this.
    public var handlerRetries = 3
    public var handlerRetryDelay: Duration = .milliseconds(100)
    /// Reconnect delays after transient errors: jittered, doubling from the first to the max.
    public var reconnectDelay: Duration = .milliseconds(100)
    public var maxReconnectDelay: Duration = .seconds(30)
    /// `reconnectDelay` and `maxReconnectDelay` as one `Backoff` (jittered 50–100 %).
    public var reconnectBackoff: Backoff {
        Backoff(initial: self.reconnectDelay, maximum: max(self.reconnectDelay, self.maxReconnectDelay))
    }
    /// How often the state columns of the checkpoint row are refreshed while nothing else writes them.
    public var heartbeatInterval: Duration = .seconds(5)
    /// The longest a runner's loop goes without a beat (the watchdog's measure of liveness):
    /// long waits are cut into slices of this length.
    public var beatInterval: Duration = .seconds(1)
    /// The lease of a unit of work (a projection or one partition): an instance that stops
    /// renewing it (killed, frozen, cut off) loses the unit to another after this long.
    public var leaseTTL: Duration = .seconds(10)
    /// How often the lease coordinator heartbeats, renews and rebalances: a fifth of the lease,
    /// at most half a second (a released unit is taken over within one tick).
    public var leaseTick: Duration { min(self.leaseTTL / 5, .milliseconds(500)) }
    /// The server ends a batch transaction idle for this long (a frozen owner), well within
    /// the lease: half of it, at least a second.
    public var idleTransactionTimeout: Duration { max(self.leaseTTL / 2, .seconds(1)) }
    /// What the connections may use: `.transaction` behind a transaction pooler (PgBouncer
    /// `pool_mode = transaction`): no LISTEN, no statements prepared across transactions.
    public var pooling: Pooling = .session
    /// The most server connections the worker holds at once, everything counted (its
    /// `ConnectionPool`: batches, the read-ahead, leases, the head probe, the lag sampler, the
    /// swap monitor, LISTEN, and `/status` when the daemon shares the pool).
    public var maxConnections = 10
    /// A pooled connection idle this long is closed.
    public var connectionIdleTimeout: Duration = .seconds(10)
    /// Refuse an events sequence with CACHE > 1 unless this is set.
    public var allowSequenceCache = false

    public init() {}
}

/// How the daemon's connections reach PostgreSQL.
public enum Pooling: String, Sendable {
    /// Each connection is a server session of its own (direct, or PgBouncer in session mode).
    case session
    /// Through a transaction pooler: session state does not outlive a transaction.
    case transaction
}
