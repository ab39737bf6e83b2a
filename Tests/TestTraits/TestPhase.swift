import Foundation
import Testing

/// The phase of `scripts/test` running now (`PROJECTIONIST_TEST_PHASE`), which decides what a
/// suite that needs a server or time of its own does: `--unit` runs without a server, the
/// parallel phase leaves out the suites that run alone, and each of those has a phase of its own.
/// Without the variable (a filtered `swift test`), everything runs.
public enum TestPhase: String, Sendable {
    /// `scripts/test --unit`: no server.
    case unit
    /// Everything that may run next to everything else.
    case parallel
    /// Suites that bound time (latency, timeouts, takeovers in seconds).
    case timed
    /// Backends killed every few milliseconds while catching up.
    case chaos
    /// Several daemons at once, with lease takeovers timed in seconds.
    case severalDaemons
    /// Daemons with 30 to 60 projections, loading both cores.
    case manyProjections

    /// The phase `scripts/test` set, if any.
    public static var current: TestPhase? {
        ProcessInfo.processInfo.environment["PROJECTIONIST_TEST_PHASE"].flatMap(TestPhase.init(rawValue:))
    }
}

extension Trait where Self == ConditionTrait {
    /// Needs the PostgreSQL server `scripts/test` starts: off in `scripts/test --unit`.
    public static var database: Self {
        .disabled(if: TestPhase.current == .unit, "needs PostgreSQL; scripts/test --unit runs without a server")
    }

    /// Runs alone, in `phase` of `scripts/test` (the parallel load would skew it, or it the others).
    public static func runsAlone(_ phase: TestPhase) -> Self {
        .enabled(if: TestPhase.current.map { $0 == phase } ?? true, "runs alone, in the \(phase.rawValue) phase of scripts/test")
    }
}
