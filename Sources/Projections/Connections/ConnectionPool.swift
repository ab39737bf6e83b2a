import Logging
import Metrics
import Postgres
import Synchronization

/// The daemon's server connections: at most `maxConnections` at once, everything counted (batch
/// transactions, the read-ahead, the lease coordinator, the head probe, the lag sampler, the swap
/// monitor, `/status`, LISTEN).
///
/// A thin driver around `PoolStateMachine`, which makes every decision (who is served next, when
/// to open, back off, close). Waiting suspends the task on a continuation: no thread is blocked,
/// and libpq calls stay on each connection's own queue. A borrower that is cancelled while
/// waiting leaves the queue at once.
///
/// The deadlock rule: code that holds a connection never waits for a second one; it may only
/// `tryLease()` (the read-ahead does), which never waits.
public final class ConnectionPool: Sendable {
    public typealias Priority = ConnectionPriority

    /// The most connections open at once.
    public let maxConnections: Int
    let database: ConnectionConfiguration
    let logger: Logger
    private let state: Mutex<State>
    private let openGauge = Gauge(label: "projectionist_connections_open")
    private let waitTimer = Metrics.Timer(label: "projectionist_connection_wait_seconds")

    private struct State {
        var machine: PoolStateMachine
        var connections: [PoolStateMachine.ConnectionID: PostgresConnection] = [:]
        var ids: [ObjectIdentifier: PoolStateMachine.ConnectionID] = [:]
        var waiters: [PoolStateMachine.WaiterID: CheckedContinuation<PostgresConnection, any Error>] = [:]
        /// Waiters cancelled before their continuation was registered.
        var cancelledEarly: Set<PoolStateMachine.WaiterID> = []
        var nextWaiter = 0
        var nextConnection = 0
        /// The error of the last failed open, for the waiter it fails.
        var lastOpenError: (any Error)?
    }

    /// - Parameters:
    ///   - maxConnections: the budget (at least 1; the daemon asks at least 3).
    ///   - idleTimeout: an idle connection is closed after this long.
    ///   - backoff: the delays between attempts to open after one failed.
    public init(
        database: ConnectionConfiguration, maxConnections: Int, idleTimeout: Duration = .seconds(10),
        backoff: Backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(30)), logger: Logger = Logger(label: "projectionist")
    ) {
        self.maxConnections = max(1, maxConnections)
        self.database = database
        self.logger = logger
        self.state = Mutex(
            State(
                machine: PoolStateMachine(
                    configuration: .init(maxConnections: self.maxConnections, idleTimeout: idleTimeout, backoff: backoff))))
        Gauge(label: "projectionist_connections_max").record(self.maxConnections)
        self.openGauge.record(0)
    }

    /// The pool of a worker's options (`maxConnections`, `connectionIdleTimeout`, `reconnectBackoff`).
    public convenience init(database: ConnectionConfiguration, options: RuntimeOptions, logger: Logger = Logger(label: "projectionist")) {
        self.init(
            database: database, maxConnections: options.maxConnections, idleTimeout: options.connectionIdleTimeout,
            backoff: options.reconnectBackoff, logger: logger)
    }

    /// Connections open now (idle, borrowed, dedicated), and those being opened besides.
    public var counts: (open: Int, opening: Int, idle: Int, waiting: Int) {
        self.state.withLock { ($0.machine.openCount, $0.machine.opening, $0.machine.idle.count, $0.machine.waiting) }
    }

    // MARK: - Borrowing

    /// Runs `body` on a borrowed connection and returns it afterwards; waits (first come, first
    /// served within `priority`) while none is free. A connection that is no longer reusable
    /// (broken, left mid-transaction) or whose body threw a connection-loss error is closed.
    /// - Throws: `CancellationError` when cancelled while waiting; an open's error when the server
    ///   cannot be reached (not when it refuses for its connection limit: then it waits); or `body`'s.
    public func withConnection<T: Sendable>(
        priority: Priority = .batch, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await self.lending(try await self.lease(priority: priority), to: body)
    }

    /// Runs `body` on a connection only when one is free now (idle, or a slot of the budget with
    /// nobody waiting); nil without running it otherwise. Never waits behind other borrowers.
    public func tryWithConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T? {
        guard let connection = await self.tryLease() else { return nil }
        return try await self.lending(connection, to: body)
    }

    /// Runs `body` on a leased `connection`, then gives it back (judged by what `body` threw).
    private func lending<T: Sendable>(_ connection: PostgresConnection, to body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            let result = try await body(connection)
            await self.release(connection)
            return result
        } catch {
            await self.release(connection, after: error)
            throw error
        }
    }

    /// Borrows a connection, waiting for one; give it back with `release(_:after:)`. An idle
    /// connection whose backend ended meanwhile is closed and another one taken.
    public func lease(priority: Priority = .batch) async throws -> PostgresConnection {
        try await self.alive { try await self.wait(priority: priority, dedicated: false) }
    }

    /// What `take` returns, once it is alive (`PostgresConnection.isAliveWhileIdle`); a dead one
    /// is discarded (a fresh one is opened in its place) and `take` asked again.
    private func alive(_ take: () async throws -> PostgresConnection) async throws -> PostgresConnection {
        while true {
            let connection = try await take()
            if await connection.isAliveWhileIdle() { return connection }
            await self.release(connection, discard: true)
        }
    }

    /// A connection now, or nil when none is free without waiting (see `tryWithConnection`).
    public func tryLease() async -> PostgresConnection? {
        let decision = self.state.withLock { $0.machine.tryBorrow(now: .now) }
        switch decision {
        case .none:
            return nil
        case .leased(let id):
            guard let connection = self.state.withLock({ $0.connections[id] }) else { return nil }
            if await connection.isAliveWhileIdle() { return connection }
            await self.release(connection, discard: true)
            return nil
        case .open:
            do {
                let connection = try await PostgresConnection.connect(self.database)
                self.state.withLock { state in
                    let id = Self.register(connection, in: &state)
                    state.machine.openedDirect(id)
                }
                self.recordOpen()
                return connection
            } catch {
                let actions = self.state.withLock {
                    $0.machine.openFailed(ConnectionLimitRefusal.isRefusal(error) ? .refused : .other, direct: true, now: .now)
                }
                self.perform(actions, error: error)
                return nil
            }
        }
    }

    /// A connection for good (LISTEN): it counts against the budget until `release(_:after:)`,
    /// which closes it instead of lending it again.
    public func reserveDedicated() async throws -> PostgresConnection {
        try await self.alive { try await self.wait(priority: .control, dedicated: true) }
    }

    /// Gives a borrowed (or dedicated) connection back. Closed instead of lent again when it is
    /// no longer reusable, `error` says the connection was lost, or `discard` asks for it.
    public func release(_ connection: PostgresConnection, after error: (any Error)? = nil, discard: Bool = false) async {
        let lost = (error as? PostgresError)?.isConnectionLost ?? false
        let reusable = await connection.isReusable
        let broken = discard || lost || !reusable
        let actions = self.state.withLock { state -> PoolStateMachine.Actions in
            guard let id = state.ids[ObjectIdentifier(connection)] else {
                Task { await connection.close() }  // not one of ours (never happens): do not keep it open
                return .init()
            }
            return state.machine.released(id, broken: broken, now: .now)
        }
        self.perform(actions)
    }

    /// Closes the idle connections (a worker stopped); the pool stays usable.
    public func drain() {
        let (closing, freed) = self.state.withLock { state in Self.unregisterForClosing(state.machine.drain(), in: &state) }
        self.close(closing)
        if freed != PoolStateMachine.Actions() { self.perform(freed) }
    }

    // MARK: - Driving the machine

    private func wait(priority: Priority, dedicated: Bool) async throws -> PostgresConnection {
        let started = ContinuousClock.now
        let id = self.state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let connection = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection, any Error>) in
                let actions = self.state.withLock { state -> PoolStateMachine.Actions? in
                    if state.cancelledEarly.remove(id) != nil { return nil }
                    state.waiters[id] = continuation
                    return state.machine.borrow(id, priority: priority, dedicated: dedicated, now: .now)
                }
                guard let actions else { return continuation.resume(throwing: CancellationError()) }
                self.perform(actions)
            }
        } onCancel: {
            let continuation = self.state.withLock { state -> CheckedContinuation<PostgresConnection, any Error>? in
                guard let continuation = state.waiters[id] else {
                    state.cancelledEarly.insert(id)
                    return nil
                }
                guard state.machine.cancel(id) else { return nil }  // served meanwhile: it resumes with the connection
                state.waiters[id] = nil
                return continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
        self.state.withLock { _ = $0.cancelledEarly.remove(id) }
        self.waitTimer.recordNanoseconds(Self.nanoseconds(ContinuousClock.now - started))
        return connection
    }

    /// Performs what the machine asked for (outside the lock).
    private func perform(_ actions: PoolStateMachine.Actions, error: (any Error)? = nil) {
        var resumes: [(CheckedContinuation<PostgresConnection, any Error>, Result<PostgresConnection, any Error>)] = []
        var closing: [PostgresConnection] = []
        var unclaimed = PoolStateMachine.Actions()
        self.state.withLock { state in
            for served in actions.serve {
                guard let connection = state.connections[served.connection] else { continue }
                if let continuation = state.waiters.removeValue(forKey: served.waiter) {
                    resumes.append((continuation, .success(connection)))
                } else {
                    // Its waiter went meanwhile: the connection goes to the next one.
                    unclaimed.merge(state.machine.released(served.connection, broken: false, now: .now))
                }
            }
            for waiter in actions.fail {
                let failure = error ?? state.lastOpenError ?? PostgresError(code: .connectionFailed, message: "could not open a connection")
                if let continuation = state.waiters.removeValue(forKey: waiter) { resumes.append((continuation, .failure(failure))) }
            }
            let (taken, freed) = Self.unregisterForClosing(actions.close, in: &state)
            closing = taken
            unclaimed.merge(freed)
        }
        for (continuation, result) in resumes { continuation.resume(with: result) }
        self.close(closing)
        for _ in 0..<actions.open { Task { await self.open() } }
        if let at = actions.retryAt {
            Task {
                try? await Task.sleep(until: at)
                self.perform(self.state.withLock { $0.machine.retryDue(now: .now) })
            }
        }
        if let at = actions.idleCheckAt {
            Task {
                try? await Task.sleep(until: at)
                self.perform(self.state.withLock { $0.machine.closeIdle(now: .now) })
            }
        }
        if let count = actions.logRefusals {
            self.logger.warning(
                "The server refused a connection (its connection limit); going on with the connections open and trying again with backoff.",
                metadata: [
                    "refusals": "\(count)", "connections.open": "\(self.counts.open)", "connections.max": "\(self.maxConnections)",
                    "error": "\(error.map { "\($0)" } ?? "")",
                ])
        }
        if !actions.close.isEmpty || actions.open > 0 || !actions.serve.isEmpty { self.recordOpen() }
        if unclaimed != PoolStateMachine.Actions() { self.perform(unclaimed) }
    }

    /// Takes in `connection`, opened outside the pool to the same database (the daemon's
    /// start-up check), as an idle connection; the pool closes it when its budget is full.
    public func adopt(_ connection: PostgresConnection) {
        let actions = self.state.withLock { state in
            let id = Self.register(connection, in: &state)
            return state.machine.adopted(id, now: .now)
        }
        self.perform(actions)
        self.recordOpen()
    }

    /// Opens one connection for the waiters (`Actions.open`).
    private func open() async {
        do {
            let connection = try await PostgresConnection.connect(self.database)
            let actions = self.state.withLock { state in
                let id = Self.register(connection, in: &state)
                return state.machine.opened(id, now: .now)
            }
            self.perform(actions)
            self.recordOpen()
        } catch {
            let actions = self.state.withLock { state in
                state.lastOpenError = error
                return state.machine.openFailed(ConnectionLimitRefusal.isRefusal(error) ? .refused : .other, now: .now)
            }
            self.perform(actions, error: error)
        }
    }

    private static func register(_ connection: PostgresConnection, in state: inout State) -> PoolStateMachine.ConnectionID {
        let id = state.nextConnection
        state.nextConnection += 1
        state.connections[id] = connection
        state.ids[ObjectIdentifier(connection)] = id
        return id
    }

    private static func unregister(_ id: PoolStateMachine.ConnectionID, in state: inout State) -> PostgresConnection? {
        guard let connection = state.connections.removeValue(forKey: id) else { return nil }
        state.ids[ObjectIdentifier(connection)] = nil
        return connection
    }

    /// Closes connections the machine handed out to be closed; each frees its slot in the budget
    /// only once closed, so that no open overtakes it.
    /// Takes the connections the machine handed out to be closed out of the pool; one it no
    /// longer holds has nothing to close, so its slot is freed at once (the actions returned).
    private static func unregisterForClosing(
        _ ids: [PoolStateMachine.ConnectionID], in state: inout State
    ) -> (connections: [PostgresConnection], freed: PoolStateMachine.Actions) {
        var connections: [PostgresConnection] = []
        var freed = PoolStateMachine.Actions()
        for id in ids {
            if let connection = Self.unregister(id, in: &state) { connections.append(connection) } else { freed.merge(state.machine.closed(now: .now)) }
        }
        return (connections, freed)
    }

    private func close(_ connections: [PostgresConnection]) {
        guard !connections.isEmpty else { return }
        for connection in connections {
            Task {
                await connection.close()
                self.perform(self.state.withLock { $0.machine.closed(now: .now) })
            }
        }
        self.recordOpen()
    }

    private func recordOpen() {
        self.openGauge.record(self.state.withLock { $0.machine.openCount })
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
