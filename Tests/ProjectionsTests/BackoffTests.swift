import Projections
import Testing

/// SplitMix64: a seeded generator, so the jitter a test sees is the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `Backoff` on its own: a pure value, no clock, no server.
@Suite struct BackoffTests {
    @Test("without jitter each delay doubles the one before")
    func doubles() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(60), jitter: 1...1)
        let delays = (0..<5).map { _ in backoff.next() }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600)])
        #expect(backoff.attempts == 5)
    }

    @Test("the multiplier sets the growth")
    func multiplier() {
        var backoff = Backoff(initial: .seconds(1), maximum: .seconds(100), multiplier: 3, jitter: 1...1)
        #expect((0..<4).map { _ in backoff.next() } == [.seconds(1), .seconds(3), .seconds(9), .seconds(27)])
    }

    @Test("the delays stop growing at the maximum")
    func caps() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .milliseconds(500), jitter: 1...1)
        let delays = (0..<8).map { _ in backoff.next() }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400)] + Array(repeating: .milliseconds(500), count: 5))
        #expect(backoff.current == .milliseconds(500))
    }

    @Test("reset starts over from the initial delay")
    func reset() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10), jitter: 1...1)
        for _ in 0..<6 { _ = backoff.next() }
        #expect(backoff.current > .milliseconds(100))
        backoff.reset()
        #expect(backoff.attempts == 0)
        #expect(backoff.next() == .milliseconds(100))
        #expect(backoff.next() == .milliseconds(200))
    }

    @Test("jittered delays stay within their share of the base, and do vary")
    func jitterBounds() {
        var generator = SeededGenerator(state: 42)
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), jitter: 0.5...1.0)
        var shares: [Double] = []
        for _ in 0..<200 {
            let base = backoff.current
            let delay = backoff.next(using: &generator)
            #expect(delay >= base * 0.5 && delay <= base, "\(delay) outside 50–100 % of \(base)")
            shares.append(delay / base)
        }
        // 200 uniform draws from 0.5...1.0 cover most of the range: jitter is really applied.
        #expect(shares.min()! < 0.6)
        #expect(shares.max()! > 0.9)
    }

    @Test("the same seed gives the same delays; another seed, others")
    func seeded() {
        func delays(seed: UInt64) -> [Duration] {
            var generator = SeededGenerator(state: seed)
            var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(30))
            return (0..<10).map { _ in backoff.next(using: &generator) }
        }
        #expect(delays(seed: 7) == delays(seed: 7))
        #expect(delays(seed: 7) != delays(seed: 8))
    }

    @Test("the runtime's reconnect backoff follows its options")
    func reconnectBackoff() {
        var options = RuntimeOptions()
        options.reconnectDelay = .milliseconds(20)
        options.maxReconnectDelay = .milliseconds(50)
        let backoff = options.reconnectBackoff
        #expect(backoff.initial == .milliseconds(20))
        #expect(backoff.maximum == .milliseconds(50))
        #expect(backoff.jitter == 0.5...1.0)
        options.maxReconnectDelay = .milliseconds(5)  // below the first delay: the first one is the cap
        #expect(options.reconnectBackoff.maximum == .milliseconds(20))
    }
}
