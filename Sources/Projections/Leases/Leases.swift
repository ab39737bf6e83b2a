import Synchronization

/// The leases this instance holds, shared between its coordinator (which claims, renews and
/// releases them) and its runners (which read their unit's token before each transaction).
///
/// A lease counts only until `validUntil`, a local monotonic deadline set from the start of the
/// last renewal that succeeded: when renewals stop (the database is unreachable, the process was
/// frozen), the runners stop starting transactions before any other instance may claim the
/// units. Fencing keeps it safe either way; this keeps it quiet.
public final class Leases: Sendable {
    struct State {
        var tokens: [String: Int64] = [:]
        var validUntil: ContinuousClock.Instant?
        var wakeups: [String: Wakeup] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// The token of `unit`'s lease, nil when this instance does not hold it (now).
    public func token(for unit: String, now: ContinuousClock.Instant = .now) -> Int64? {
        self.state.withLock { state in
            guard let until = state.validUntil, now < until else { return nil }
            return state.tokens[unit]
        }
    }

    /// How many units this instance holds now.
    public func count(now: ContinuousClock.Instant = .now) -> Int {
        self.state.withLock { state in
            guard let until = state.validUntil, now < until else { return 0 }
            return state.tokens.count
        }
    }

    /// The runner of `unit` is woken when this instance gains the unit.
    func register(_ unit: String, wakeup: Wakeup) {
        self.state.withLock { $0.wakeups[unit] = wakeup }
    }

    /// After a renewal: these are held (with their tokens) until `validUntil`.
    func hold(_ tokens: [String: Int64], validUntil: ContinuousClock.Instant) {
        let woken = self.state.withLock { state -> [Wakeup] in
            let gained = tokens.filter { state.tokens[$0.key] != $0.value }.keys
            state.tokens = tokens
            state.validUntil = validUntil
            return gained.compactMap { state.wakeups[$0] }
        }
        for wakeup in woken { wakeup.signal() }
    }

    /// A runner found its token stale (`FencedError`): forget the lease until the coordinator
    /// claims the unit again.
    func drop(_ unit: String, token: Int64) {
        self.state.withLock { state in
            if state.tokens[unit] == token { state.tokens[unit] = nil }
        }
    }

    /// Every lease is gone (shutdown, or renewals failing past the deadline).
    func clear() {
        self.state.withLock { $0.tokens = [:] }
    }
}
