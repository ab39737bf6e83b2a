import CoreMetrics
import Metrics

/// Publishes the status board as swift-metrics gauges every second: per unit, the checkpoint,
/// the head, the lag in events and in seconds, the state (one 0/1 gauge per state) and how long
/// the current gap wait has lasted. Units another instance runs report only their state.
struct WorkerMetrics: Sendable {
    let board: StatusBoard
    let units: [WorkUnit]
    var interval: Duration = .seconds(1)

    struct Gauges {
        let checkpoint: Gauge
        let head: Gauge
        let lagEvents: Gauge
        let lagSeconds: Gauge
        let gapWaitSeconds: Gauge
        let states: [ProjectionState: Gauge]

        init(dimensions: [(String, String)]) {
            self.checkpoint = Gauge(label: "projectionist_checkpoint_position", dimensions: dimensions)
            self.head = Gauge(label: "projectionist_head_position", dimensions: dimensions)
            self.lagEvents = Gauge(label: "projectionist_lag_events", dimensions: dimensions)
            self.lagSeconds = Gauge(label: "projectionist_lag_seconds", dimensions: dimensions)
            self.gapWaitSeconds = Gauge(label: "projectionist_gap_wait_seconds", dimensions: dimensions)
            self.states = Dictionary(
                uniqueKeysWithValues: ProjectionState.allCases.map {
                    ($0, Gauge(label: "projectionist_state", dimensions: dimensions + [("state", $0.rawValue)]))
                })
        }
    }

    func run() async {
        let gauges = Dictionary(uniqueKeysWithValues: self.units.map { ($0.name, Gauges(dimensions: UnitMetrics.dimensions(of: $0))) })
        var gapSince: [String: ContinuousClock.Instant] = [:]
        while !Task.isCancelled {
            let now = ContinuousClock.now
            for status in self.board.all {
                guard let unit = gauges[status.name] else { continue }
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
                unit.checkpoint.record(status.position)
                unit.head.record(status.head)
                unit.lagEvents.record(status.lag)
                unit.lagSeconds.record(status.lagSeconds ?? 0)
            }
            try? await Task.sleep(for: self.interval)
        }
    }
}
