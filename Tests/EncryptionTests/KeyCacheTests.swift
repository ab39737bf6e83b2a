import Crypto
import Foundation
import Synchronization
import Testing

@testable import Encryption

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let offset = Mutex(Duration.zero)
    private let start = ContinuousClock.now
    var now: ContinuousClock.Instant { self.start.advanced(by: self.offset.withLock { $0 }) }
    func advance(_ duration: Duration) { self.offset.withLock { $0 += duration } }
}

@Suite struct KeyCacheTests {
    func reference(_ id: Int, version: Int = 1) -> KeyReference {
        KeyReference(scope: "user-pii", scopeID: "user-\(id)", version: version)
    }

    @Test("an entry is used until its lifetime has passed, then fetched again")
    func expiry() {
        let clock = ManualClock()
        let cache = KeyCache(KeyCache.Configuration(maximumEntries: 10, entryLifetime: .seconds(60)), now: { clock.now })
        cache.insert(.dataKey(SymmetricKey(size: .bits256), wrapped: []), for: self.reference(1))
        cache.insert(.destroyed, for: self.reference(2))
        clock.advance(.seconds(59))
        #expect(cache.lookup(self.reference(1)) != nil)
        guard case .destroyed = cache.lookup(self.reference(2)) else {
            Issue.record("a destroyed key is cached as destroyed")
            return
        }
        clock.advance(.seconds(1))
        #expect(cache.lookup(self.reference(1)) == nil)
        #expect(cache.lookup(self.reference(2)) == nil)
        #expect(cache.count == 0)
        cache.insert(.destroyed, for: self.reference(1))
        #expect(cache.lookup(self.reference(1)) != nil)
    }

    @Test("at most maximumEntries: the oldest go first")
    func size() {
        let cache = KeyCache(KeyCache.Configuration(maximumEntries: 3, entryLifetime: .seconds(60)))
        for id in 1...5 { cache.insert(.destroyed, for: self.reference(id)) }
        #expect(cache.count == 3)
        #expect((1...5).map { cache.lookup(self.reference($0)) != nil } == [false, false, true, true, true])
        cache.insert(.destroyed, for: self.reference(3))  // re-inserted: now the newest
        cache.insert(.destroyed, for: self.reference(6))
        #expect([3, 4, 5, 6].map { cache.lookup(self.reference($0)) != nil } == [true, false, true, true])
        for round in 0..<20_000 { cache.insert(.destroyed, for: self.reference(round % 7)) }
        #expect(cache.count == 3)
    }

    @Test("remove drops every version of one subject; removeAll drops everything")
    func removal() {
        let cache = KeyCache()
        for version in 1...3 { cache.insert(.destroyed, for: self.reference(1, version: version)) }
        cache.insert(.destroyed, for: self.reference(2))
        cache.remove(scope: "user-pii", scopeID: "user-1")
        #expect(cache.count == 1 && cache.lookup(self.reference(2)) != nil)
        cache.removeAll()
        #expect(cache.count == 0)
    }
}
