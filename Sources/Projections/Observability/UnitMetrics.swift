import CoreMetrics
import Metrics

/// One unit's metrics through swift-metrics (no-ops unless the process bootstraps a backend,
/// as the daemon does with Prometheus): labels `projection` and, for a partition, `partition`.
/// Counters and the batch timer are fed where things happen; `WorkerMetrics` sets the gauges.
struct UnitMetrics: Sendable {
    let applied: Counter
    let batchDuration: Metrics.Timer
    let deadLetters: Counter
    let handlerErrors: Counter
    let reconnects: Counter
    let gapWaits: Counter

    /// `projection`, and `partition` for a partition.
    static func dimensions(of unit: WorkUnit) -> [(String, String)] {
        var dimensions = [("projection", unit.projection.name)]
        if let partition = unit.partition { dimensions.append(("partition", partition.description)) }
        return dimensions
    }

    init(unit: WorkUnit) {
        let dimensions = Self.dimensions(of: unit)
        self.applied = Counter(label: "projectionist_events_applied_total", dimensions: dimensions)
        self.batchDuration = Metrics.Timer(label: "projectionist_batch_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        self.deadLetters = Counter(label: "projectionist_dead_letters_total", dimensions: dimensions)
        self.handlerErrors = Counter(label: "projectionist_handler_errors_total", dimensions: dimensions)
        self.reconnects = Counter(label: "projectionist_reconnects_total", dimensions: dimensions)
        self.gapWaits = Counter(label: "projectionist_gap_waits_total", dimensions: dimensions)
    }

    func recordApplied(_ count: Int) { self.applied.increment(by: count) }
    func recordBatch(_ duration: Duration) { self.batchDuration.recordNanoseconds(duration.nanoseconds) }
    func recordHandlerError() { self.handlerErrors.increment() }
    func recordDeadLetter() { self.deadLetters.increment() }
    func recordReconnect() { self.reconnects.increment() }
    func recordGapWait() { self.gapWaits.increment() }
}
