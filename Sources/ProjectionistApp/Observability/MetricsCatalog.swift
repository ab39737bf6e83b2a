import CoreMetrics
import Prometheus

/// Every metric the daemon exports, with its Prometheus type and help text (docs/reference.md's
/// table and a test are kept in step with it), and the swift-metrics backend that registers them in
/// a `PrometheusCollectorRegistry` with that help text (swift-prometheus's own factory writes
/// none, and `promtool check metrics` wants it).
enum MetricsCatalog {
    struct Entry: Sendable {
        var name: String
        var type: String
        var help: String
    }

    static let entries: [Entry] = [
        Entry(name: "projectionist_events_applied_total", type: "counter", help: "Events applied to the read model (per projection and partition)."),
        Entry(name: "projectionist_batch_duration_seconds", type: "histogram", help: "Duration of batch transactions, from the fencing step to the commit."),
        Entry(name: "projectionist_checkpoint_position", type: "gauge", help: "The checkpoint: every global_position up to it is applied or passed over."),
        Entry(name: "projectionist_head_position", type: "gauge", help: "The highest committed global_position the runner has seen."),
        Entry(name: "projectionist_lag_events", type: "gauge", help: "Head minus checkpoint, in events."),
        Entry(name: "projectionist_lag_seconds", type: "gauge", help: "Age of the oldest committed event not applied yet; 0 when caught up."),
        Entry(name: "projectionist_state", type: "gauge", help: "1 for the unit's current state (label state), 0 for the others."),
        Entry(name: "projectionist_gap_waits_total", type: "counter", help: "Waits on a missing position whose owner may still commit."),
        Entry(name: "projectionist_gap_wait_seconds", type: "gauge", help: "How long the current gap wait has lasted; 0 when not waiting."),
        Entry(name: "projectionist_dead_letters_total", type: "counter", help: "Events dead-lettered (on_error: skip, or park: the failing event)."),
        Entry(name: "projectionist_parked_aggregates", type: "gauge", help: "Aggregates parked (on_error: park): their events wait as dead letters."),
        Entry(name: "projectionist_handler_errors_total", type: "counter", help: "Handler failures (each failed batch and each failed retry of an event)."),
        Entry(name: "projectionist_reconnects_total", type: "counter", help: "Reconnections and retries after transient or permanent database errors."),
        Entry(name: "projectionist_build_info", type: "gauge", help: "Always 1: the daemon's release (label version) and the commit it was built from (label commit)."),
        Entry(name: "projectionist_open_connections", type: "gauge", help: "Database connections the daemon has open."),
        Entry(name: "projectionist_connections_open", type: "gauge", help: "Connections of the daemon's pool open now (idle, borrowed, LISTEN's)."),
        Entry(name: "projectionist_connections_max", type: "gauge", help: "The pool's budget: database.max_connections."),
        Entry(name: "projectionist_connection_wait_seconds", type: "histogram", help: "How long a borrower waited for a pooled connection."),
        Entry(name: "process_cpu_seconds_total", type: "counter", help: "Total user and system CPU time spent in seconds."),
        Entry(name: "process_start_time_seconds", type: "gauge", help: "Start time of the process since unix epoch in seconds."),
        Entry(name: "process_resident_memory_bytes", type: "gauge", help: "Resident memory size in bytes."),
        Entry(name: "process_virtual_memory_bytes", type: "gauge", help: "Virtual memory size in bytes."),
        Entry(name: "process_open_fds", type: "gauge", help: "Number of open file descriptors."),
        Entry(name: "process_max_fds", type: "gauge", help: "Maximum number of open file descriptors."),
    ]

    static func help(_ name: String) -> String {
        self.entries.first { $0.name == name }?.help ?? "Projectionist metric \(name)."
    }

    static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: self.help(name))
    }

    /// Batch durations: from a millisecond to a minute.
    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    /// swift-metrics → the registry, with the catalog's help text.
    struct Factory: CoreMetrics.MetricsFactory {
        let registry: PrometheusCollectorRegistry

        func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
            self.registry.makeCounter(descriptor: MetricsCatalog.descriptor(label), labels: dimensions)
        }

        func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
            self.registry.makeCounter(descriptor: MetricsCatalog.descriptor(label), labels: dimensions)
        }

        func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
            // Every recorder here is a gauge (the last value); a histogram of values is not used.
            self.registry.makeGauge(descriptor: MetricsCatalog.descriptor(label), labels: dimensions)
        }

        func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
            self.registry.makeGauge(descriptor: MetricsCatalog.descriptor(label), labels: dimensions)
        }

        func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
            self.registry.makeDurationHistogram(descriptor: MetricsCatalog.descriptor(label), labels: dimensions, buckets: MetricsCatalog.durationBuckets)
        }

        func destroyCounter(_ handler: any CounterHandler) {
            if let counter = handler as? Prometheus.Counter { self.registry.unregisterCounter(counter) }
        }

        func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
            if let counter = handler as? Prometheus.Counter { self.registry.unregisterCounter(counter) }
        }

        func destroyRecorder(_ handler: any RecorderHandler) {
            if let gauge = handler as? Prometheus.Gauge { self.registry.unregisterGauge(gauge) }
        }

        func destroyMeter(_ handler: any MeterHandler) {
            if let gauge = handler as? Prometheus.Gauge { self.registry.unregisterGauge(gauge) }
        }

        func destroyTimer(_ handler: any TimerHandler) {
            if let histogram = handler as? DurationHistogram { self.registry.unregisterDurationHistogram(histogram) }
        }
    }
}
