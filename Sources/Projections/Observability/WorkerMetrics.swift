import CoreMetrics
import Metrics

/// Publishes the status board as swift-metrics gauges every second: per unit, the checkpoint,
/// the head, the lag in events and in seconds, the state (one 0/1 gauge per state), how long
/// the current gap wait has lasted and how many aggregates are parked. Units another instance runs report only their state.
///
/// A gauge is exported from the moment it is made, so the position gauges are made only once
/// the runner has read the head (and the lag in seconds once it was sampled): a lag of 0 always
/// means caught up, never "not known yet".
struct WorkerMetrics: Sendable {
    let board: StatusBoard
    let units: [WorkUnit]
    var interval: Duration = .seconds(1)

    struct Gauges {
        let dimensions: [(String, String)]
        /// Made once the head is known.
        var checkpoint: Gauge?
        var head: Gauge?
        var lagEvents: Gauge?
        /// Made once the lag in seconds was sampled.
        var lagSeconds: Gauge?
        let gapWaitSeconds: Gauge
        let parkedAggregates: Gauge
        let states: [ProjectionState: Gauge]

        init(dimensions: [(String, String)]) {
            self.dimensions = dimensions
            self.gapWaitSeconds = Gauge(label: "projectionist_gap_wait_seconds", dimensions: dimensions)
            self.parkedAggregates = Gauge(label: "projectionist_parked_aggregates", dimensions: dimensions)
            self.states = Dictionary(
                uniqueKeysWithValues: ProjectionState.allCases.map {
                    ($0, Gauge(label: "projectionist_state", dimensions: dimensions + [("state", $0.rawValue)]))
                })
        }
    }

    /// Records a running unit's position gauges, making them first when they can say something.
    static func recordPosition(_ status: ProjectionStatus, into unit: inout Gauges) {
        guard status.headKnown else { return }
        if unit.checkpoint == nil {
            // Each made and set at once, the checkpoint last: a scrape that sees it sees all three.
            unit.lagEvents = Gauge(label: "projectionist_lag_events", dimensions: unit.dimensions)
            unit.lagEvents?.record(status.lag)
            unit.head = Gauge(label: "projectionist_head_position", dimensions: unit.dimensions)
            unit.head?.record(status.head)
            unit.checkpoint = Gauge(label: "projectionist_checkpoint_position", dimensions: unit.dimensions)
        }
        unit.lagEvents?.record(status.lag)
        unit.head?.record(status.head)
        unit.checkpoint?.record(status.position)
        guard let seconds = status.lagSeconds else { return }
        if unit.lagSeconds == nil { unit.lagSeconds = Gauge(label: "projectionist_lag_seconds", dimensions: unit.dimensions) }
        unit.lagSeconds?.record(seconds)
    }

    func run() async {
        var gauges = Dictionary(uniqueKeysWithValues: self.units.map { ($0.name, Gauges(dimensions: UnitMetrics.dimensions(of: $0))) })
        var gapSince: [String: ContinuousClock.Instant] = [:]
        while !Task.isCancelled {
            let now = ContinuousClock.now
            for status in self.board.all {
                guard var unit = gauges[status.name] else { continue }
                defer { gauges[status.name] = unit }
                for (state, gauge) in unit.states { gauge.record(state == status.state ? 1 : 0) }
                if status.state == .waitingOnGap {
                    let since = gapSince[status.name] ?? now
                    gapSince[status.name] = since
                    unit.gapWaitSeconds.record((now - since).inSeconds)
                } else {
                    gapSince[status.name] = nil
                    unit.gapWaitSeconds.record(0)
                }
                guard status.state != .standby, status.state != .retired else { continue }
                unit.parkedAggregates.record(status.parkedAggregates)
                Self.recordPosition(status, into: &unit)
            }
            try? await Task.sleep(for: self.interval)
        }
    }
}
