/// The decisions of the daemon's connection pool, apart from any I/O.
///
/// A pure value in the manner of `RunnerStateMachine`: the driver (`ConnectionPool`) reports what
/// happened — a borrow, a return, a connection opened or refused, a cancelled waiter, the clock —
/// and performs the `Actions` it gets back (hand a connection to a waiter, open one, close some,
/// wake up later, log a refusal). Time arrives as an argument, so every decision is tested without
/// a server.
///
/// The rules:
/// - Never more than `maxConnections` connections, counting those being opened and the dedicated ones.
/// - Waiters are served control first (lease coordinator, head probe, status), then batch;
///   within a priority strictly first come, first served. A returned connection goes to the
///   first waiter, never back to the one that returns it ahead of others.
/// - A failed open backs off (jittered); while backing off at most one open is in flight, and
///   waiters are served by returned connections meanwhile. A refused open (the server's or a
///   role's connection limit) keeps its waiters waiting; any other failed open fails the first
///   waiter with the error (the server may be down: the caller's own retry applies).
/// - Idle connections are closed after `idleTimeout`; the most recently returned is reused first.
struct PoolStateMachine {
    typealias ConnectionID = Int
    typealias WaiterID = Int

    typealias Priority = ConnectionPriority

    struct Configuration: Sendable {
        var maxConnections: Int
        var idleTimeout: Duration
        var backoff: Backoff
        var refusalLogInterval: Duration = .seconds(30)
    }

    /// Why an open failed.
    enum OpenFailure: Sendable, Equatable {
        /// The server or a role/database limit refused the connection (SQLSTATE 53300).
        case refused
        /// Anything else (the server is down, unreachable): the first waiter gets the error.
        case other
    }

    /// What the driver does next; every field may be empty.
    struct Actions: Sendable, Equatable {
        /// Hand the connection to the waiter.
        var serve: [Served] = []
        /// Resume these waiters with the open's error.
        var fail: [WaiterID] = []
        /// Start opening this many connections.
        var open = 0
        var close: [ConnectionID] = []
        /// Call `retryDue(now:)` at this instant.
        var retryAt: ContinuousClock.Instant?
        /// Call `closeIdle(now:)` at this instant.
        var idleCheckAt: ContinuousClock.Instant?
        /// Log one refusal line with this count of refusals since the last one.
        var logRefusals: Int?

        struct Served: Sendable, Equatable {
            var waiter: WaiterID
            var connection: ConnectionID
        }
    }

    struct Waiter: Sendable, Equatable {
        var id: WaiterID
        /// A dedicated borrow: the connection never comes back to the pool.
        var dedicated: Bool
    }

    let configuration: Configuration
    /// Idle connections, the most recently returned last.
    private(set) var idle: [(id: ConnectionID, since: ContinuousClock.Instant)] = []
    private(set) var leased: Set<ConnectionID> = []
    private(set) var dedicated: Set<ConnectionID> = []
    private(set) var opening = 0
    /// Connections handed out to be closed (`Actions.close`, `drain`) whose close has not
    /// finished (`closed(now:)`): until then they still hold their server slot.
    private(set) var closing = 0
    private var queues: [Priority: [Waiter]] = [.control: [], .batch: []]
    private var backoff: Backoff
    /// Set after a failed open, cleared by a successful one: no open before it.
    private(set) var backingOffUntil: ContinuousClock.Instant?
    private var idleCheckScheduled: ContinuousClock.Instant?
    private(set) var refusals: RefusalLog

    init(configuration: Configuration) {
        precondition(configuration.maxConnections >= 1, "a pool needs at least one connection")
        self.configuration = configuration
        self.backoff = configuration.backoff
        self.refusals = RefusalLog(interval: configuration.refusalLogInterval)
    }

    /// Connections open now (idle, leased, dedicated).
    var openCount: Int { self.idle.count + self.leased.count + self.dedicated.count }
    /// What counts against the budget: open ones, those being opened and those being closed.
    var total: Int { self.openCount + self.opening + self.closing }
    var waiting: Int { self.queues.values.reduce(0) { $0 + $1.count } }

    // MARK: - Borrowing

    /// A waiter asks for a connection: it is served at once when one is idle and nobody waits
    /// ahead of it, else it waits (and a connection is opened for it when the budget allows).
    mutating func borrow(_ waiter: WaiterID, priority: Priority, dedicated: Bool = false, now: ContinuousClock.Instant) -> Actions {
        self.queues[priority, default: []].append(Waiter(id: waiter, dedicated: dedicated))
        return self.serveWaiters(now: now)
    }

    /// The non-blocking borrow: what a caller who would rather go without gets.
    enum TryBorrow: Sendable, Equatable {
        case leased(ConnectionID)
        /// Open one for the caller (counted now); report `openedDirect` or `openFailed(direct: true)`.
        case open
        /// Nothing free without waiting.
        case none
    }

    /// Takes an idle connection, or a free slot of the budget, only when nobody waits.
    mutating func tryBorrow(now: ContinuousClock.Instant) -> TryBorrow {
        guard self.waiting == 0 else { return .none }
        if let connection = self.idle.popLast() {
            self.leased.insert(connection.id)
            return .leased(connection.id)
        }
        guard self.backingOffUntil == nil, self.total < self.configuration.maxConnections else { return .none }
        self.opening += 1
        return .open
    }

    /// A waiter's task was cancelled. - Returns: false when it was no longer waiting (it was
    /// served or failed meanwhile: the driver returns what it got).
    mutating func cancel(_ waiter: WaiterID) -> Bool {
        for priority in [Priority.control, .batch] {
            if let index = self.queues[priority]?.firstIndex(where: { $0.id == waiter }) {
                self.queues[priority]?.remove(at: index)
                return true
            }
        }
        return false
    }

    /// A borrowed connection comes back; a broken one (or one left mid-transaction) is closed
    /// and, when someone waits, a fresh one is opened in its place.
    mutating func released(_ connection: ConnectionID, broken: Bool, now: ContinuousClock.Instant) -> Actions {
        let wasDedicated = self.dedicated.remove(connection) != nil
        let wasLeased = self.leased.remove(connection) != nil
        guard wasDedicated || wasLeased else { return Actions() }
        var actions = Actions()
        if broken || wasDedicated {
            actions.close.append(connection)
            self.closing += 1
        } else {
            self.idle.append((connection, now))
        }
        actions.merge(self.serveWaiters(now: now))
        return actions
    }

    // MARK: - Opening

    /// An open started by `Actions.open` succeeded.
    mutating func opened(_ connection: ConnectionID, now: ContinuousClock.Instant) -> Actions {
        self.opening -= 1
        self.recovered()
        self.idle.append((connection, now))
        return self.serveWaiters(now: now)
    }

    /// A connection opened outside the pool (the daemon's start-up check) joins it as an idle
    /// one, so that it is reused rather than closed while the pool opens another (its server
    /// process would still hold a slot for a moment); with the budget full, it is closed.
    mutating func adopted(_ connection: ConnectionID, now: ContinuousClock.Instant) -> Actions {
        guard self.total < self.configuration.maxConnections else {
            var actions = Actions()
            actions.close = [connection]
            self.closing += 1
            return actions
        }
        self.idle.append((connection, now))
        return self.serveWaiters(now: now)
    }

    /// An open started by `tryBorrow` succeeded: the caller has it.
    mutating func openedDirect(_ connection: ConnectionID) {
        self.opening -= 1
        self.recovered()
        self.leased.insert(connection)
    }

    /// An open failed: back off; a refusal is counted for the log; any other failure of an open
    /// made for waiters fails the first of them.
    mutating func openFailed(_ failure: OpenFailure, direct: Bool = false, now: ContinuousClock.Instant) -> Actions {
        self.opening -= 1
        var actions = Actions()
        // One step of the backoff per round of opens: several opens refused together back off once.
        if self.backingOffUntil.map({ now >= $0 }) ?? true {
            let until = now + self.backoff.next()
            self.backingOffUntil = until
            actions.retryAt = until
        }
        switch failure {
        case .refused:
            actions.logRefusals = self.refusals.record(now: now)
        case .other:
            if !direct, let first = self.popFirstWaiter() { actions.fail.append(first.id) }
        }
        actions.merge(self.serveWaiters(now: now))
        return actions
    }

    /// The backoff after a failed open ended: try one open if someone still waits.
    mutating func retryDue(now: ContinuousClock.Instant) -> Actions {
        self.serveWaiters(now: now)
    }

    private mutating func recovered() {
        self.backoff.reset()
        self.backingOffUntil = nil
    }

    // MARK: - Idle connections

    /// Closes the connections idle for `idleTimeout` or longer.
    mutating func closeIdle(now: ContinuousClock.Instant) -> Actions {
        self.idleCheckScheduled = nil
        var actions = Actions()
        let timeout = self.configuration.idleTimeout
        let expired = self.idle.filter { now - $0.since >= timeout }
        self.idle.removeAll { now - $0.since >= timeout }
        actions.close = expired.map(\.id)
        self.closing += expired.count
        actions.idleCheckAt = self.scheduleIdleCheck()
        actions.merge(self.serveWaiters(now: now))
        return actions
    }

    /// Closes every idle connection (the worker stopped); later returns go idle as usual.
    mutating func drain() -> [ConnectionID] {
        defer { self.idle.removeAll() }
        self.closing += self.idle.count
        return self.idle.map(\.id)
    }

    /// A close handed out (`Actions.close`, `drain`) has finished: its slot is free.
    mutating func closed(now: ContinuousClock.Instant) -> Actions {
        self.closing -= 1
        return self.serveWaiters(now: now)
    }

    private mutating func scheduleIdleCheck() -> ContinuousClock.Instant? {
        guard self.idleCheckScheduled == nil, let oldest = self.idle.map(\.since).min() else { return nil }
        let at = oldest + self.configuration.idleTimeout
        self.idleCheckScheduled = at
        return at
    }

    // MARK: - Serving

    private mutating func popFirstWaiter() -> Waiter? {
        for priority in [Priority.control, .batch] where !(self.queues[priority]?.isEmpty ?? true) {
            return self.queues[priority]?.removeFirst()
        }
        return nil
    }

    /// Idle connections to the first waiters; then opens for the waiters still unserved, as far
    /// as the budget (and a backoff) allows.
    private mutating func serveWaiters(now: ContinuousClock.Instant) -> Actions {
        var actions = Actions()
        while !self.idle.isEmpty, let waiter = self.popFirstWaiter() {
            let connection = self.idle.removeLast().id
            if waiter.dedicated { self.dedicated.insert(connection) } else { self.leased.insert(connection) }
            actions.serve.append(.init(waiter: waiter.id, connection: connection))
        }
        let unserved = self.waiting - self.opening
        if unserved > 0 {
            let room = self.configuration.maxConnections - self.total
            if let until = self.backingOffUntil {
                // Backing off: one probe at a time, once the delay is over.
                if now >= until, self.opening == 0, room > 0 {
                    self.opening += 1
                    actions.open = 1
                }
            } else if room > 0 {
                let count = min(unserved, room)
                self.opening += count
                actions.open = count
            }
        }
        actions.idleCheckAt = self.scheduleIdleCheck()
        return actions
    }

    /// Hands a connection that was served to a waiter that had gone (cancelled meanwhile) back.
    mutating func unclaimed(_ connection: ConnectionID, now: ContinuousClock.Instant) -> Actions {
        self.released(connection, broken: false, now: now)
    }
}

extension PoolStateMachine.Actions {
    mutating func merge(_ other: Self) {
        self.serve += other.serve
        self.fail += other.fail
        self.open += other.open
        self.close += other.close
        self.retryAt = self.retryAt ?? other.retryAt
        self.idleCheckAt = self.idleCheckAt ?? other.idleCheckAt
        self.logRefusals = self.logRefusals ?? other.logRefusals
    }
}
