/// Events applied per second over the last `window`: what `status` shows as the rate (and the
/// ETA it derives) while a projection catches up.
struct RateMeter: Sendable {
    var window: Duration = .seconds(10)
    private var samples: [(at: ContinuousClock.Instant, total: Int64)] = []
    private var total: Int64 = 0

    /// `count` more events were applied at `now`.
    mutating func add(_ count: Int, at now: ContinuousClock.Instant) {
        self.total += Int64(count)
        self.samples.append((now, self.total))
        self.samples.removeAll { now - $0.at > self.window }
    }

    /// The rate at `now`: nil before two samples half a second apart, 0 once nothing was
    /// applied within the window.
    func rate(at now: ContinuousClock.Instant) -> Double? {
        let recent = self.samples.filter { now - $0.at <= self.window }
        guard let first = recent.first, let last = recent.last else { return self.samples.isEmpty ? nil : 0 }
        let span = now - first.at
        guard span >= .milliseconds(500) else { return nil }
        let seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
        return Double(last.total - first.total) / seconds
    }
}
