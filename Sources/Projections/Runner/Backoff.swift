/// Exponential backoff with jitter and a cap: the delays between retries of one thing
/// (a reconnect, a failing event, a lost listener connection).
///
/// A pure value: `next()` returns the delay to wait now and doubles the base for the time
/// after; `reset()` starts over after a success. Jitter (a factor drawn from `jitter`) keeps
/// many runners that failed together from retrying in lockstep.
public struct Backoff: Sendable, Equatable {
    public let initial: Duration
    public let maximum: Duration
    public let multiplier: Double
    /// The share of the base delay actually waited, drawn uniformly (1...1: no jitter).
    public let jitter: ClosedRange<Double>
    /// The base of the next delay (before jitter).
    public private(set) var current: Duration
    /// Delays handed out since the last reset.
    public private(set) var attempts = 0

    public init(initial: Duration, maximum: Duration, multiplier: Double = 2, jitter: ClosedRange<Double> = 0.5...1.0) {
        precondition(initial > .zero && maximum >= initial && multiplier >= 1, "Backoff needs 0 < initial <= maximum, multiplier >= 1")
        precondition(jitter.lowerBound > 0 && jitter.upperBound <= 1, "Backoff jitter is a share in (0, 1]")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self.current = initial
    }

    /// The delay to wait now; the next one is `multiplier` times longer, up to `maximum`.
    public mutating func next() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return self.next(using: &generator)
    }

    /// `next()` with a given random source (tests pass a seeded one).
    public mutating func next(using generator: inout some RandomNumberGenerator) -> Duration {
        let base = self.current
        self.current = min(base * self.multiplier, self.maximum)
        self.attempts += 1
        let share = self.jitter.lowerBound == self.jitter.upperBound
            ? self.jitter.lowerBound : Double.random(in: self.jitter, using: &generator)
        return base * share
    }

    /// Starts over from `initial` (after a success).
    public mutating func reset() {
        self.current = self.initial
        self.attempts = 0
    }
}
