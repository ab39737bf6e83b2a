/// How often a refused connection is logged: at most once every `interval`, with the count of
/// refusals since the last line, so that a server at its connection limit is reported without a
/// flood (a pool retrying with backoff may be refused many times a minute).
struct RefusalLog: Sendable, Equatable {
    let interval: Duration
    private(set) var lastLogged: ContinuousClock.Instant?
    /// Refusals not reported in a line yet.
    private(set) var pending = 0

    init(interval: Duration) {
        self.interval = interval
    }

    /// Counts one refusal. - Returns: the count to log now (this one included), or nil to stay quiet.
    mutating func record(now: ContinuousClock.Instant) -> Int? {
        self.pending += 1
        if let last = self.lastLogged, now - last < self.interval { return nil }
        self.lastLogged = now
        defer { self.pending = 0 }
        return self.pending
    }
}
