import Crypto
import Synchronization

/// Unwrapped data keys by subject and version, in memory only, so decrypting a projection's
/// catch-up does not query the key table per event. Bounded in size (the oldest entry goes
/// first) and in time (an entry older than `entryLifetime` is fetched again, which is also how
/// long a key destroyed by another process stays usable here). Destroyed keys are cached too,
/// as destroyed. Safe to share between tasks.
public final class KeyCache: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// At most this many entries (at least 1).
        public var maximumEntries: Int
        /// An entry is used for this long after it was fetched.
        public var entryLifetime: Duration

        public init(maximumEntries: Int = 10_000, entryLifetime: Duration = .seconds(300)) {
            precondition(maximumEntries >= 1, "KeyCache holds at least one entry")
            precondition(entryLifetime >= .zero, "KeyCache's entry lifetime cannot be negative")
            self.maximumEntries = maximumEntries
            self.entryLifetime = entryLifetime
        }
    }

    /// What the cache knows of one key version.
    enum Entry {
        /// The unwrapped key, and the wrapped bytes it came from (a re-wrap changes them).
        case dataKey(SymmetricKey, wrapped: [UInt8])
        case destroyed
    }

    private struct Slot {
        var entry: Entry
        var expires: ContinuousClock.Instant
        var serial: UInt64
    }

    private struct State: ~Copyable {
        var slots: [KeyReference: Slot] = [:]
        /// Insertion order: (reference, serial); a serial that no longer matches its slot is stale.
        var order: [(KeyReference, UInt64)] = []
        var head = 0
        var nextSerial: UInt64 = 0
    }

    public let configuration: Configuration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    /// - Parameter now: the clock (tests pass their own).
    public init(
        _ configuration: Configuration = Configuration(),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.configuration = configuration
        self.now = now
    }

    /// The number of entries held (expired ones included until they are looked up or evicted).
    public var count: Int { self.state.withLock { $0.slots.count } }

    /// Drops every version of one subject's key.
    public func remove(scope: String, scopeID: String) {
        self.state.withLock { state in
            for reference in state.slots.keys where reference.scope == scope && reference.scopeID == scopeID {
                state.slots[reference] = nil
            }
        }
    }

    /// Drops one version.
    func remove(_ reference: KeyReference) {
        _ = self.state.withLock { $0.slots.removeValue(forKey: reference) }
    }

    /// Drops everything.
    public func removeAll() {
        self.state.withLock { state in
            state = State()
        }
    }

    /// The entry for `reference`, unless missing or expired (an expired one is dropped).
    func lookup(_ reference: KeyReference) -> Entry? {
        let now = self.now()
        return self.state.withLock { state in
            guard let slot = state.slots[reference] else { return nil }
            guard slot.expires > now else {
                state.slots[reference] = nil
                return nil
            }
            return slot.entry
        }
    }

    /// Stores `entry`, evicting the oldest entries beyond `maximumEntries`.
    func insert(_ entry: Entry, for reference: KeyReference) {
        let expires = self.now().advanced(by: self.configuration.entryLifetime)
        let maximum = self.configuration.maximumEntries
        self.state.withLock { state in
            state.nextSerial += 1
            state.slots[reference] = Slot(entry: entry, expires: expires, serial: state.nextSerial)
            state.order.append((reference, state.nextSerial))
            while state.slots.count > maximum, state.head < state.order.count {
                let (oldest, serial) = state.order[state.head]
                state.head += 1
                if state.slots[oldest]?.serial == serial { state.slots[oldest] = nil }
            }
            // Drop stale and consumed records once they outnumber the live ones: amortised O(1).
            if state.order.count > 2 * max(maximum, 512) {
                let live = state.order[state.head...].filter { state.slots[$0.0]?.serial == $0.1 }
                state.order = Array(live)
                state.head = 0
            }
        }
    }
}
