extension Duration {
    /// The duration in seconds, as SQL intervals take it.
    var inSeconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
    /// The duration in whole nanoseconds, as swift-metrics timers take it.
    var nanoseconds: Int64 { self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000 }
}
