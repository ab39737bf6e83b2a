import Postgres

/// The names of every table and object Projectionist uses, with the defaults of docs/reference.md.
public struct Schema: Sendable, Hashable {
    public var eventsTable = QualifiedName(name: "events")
    /// The events table's identity columns and heads table: `aggregate_*` (default) or `stream_*`.
    public var layout = EventLayout.aggregate
    /// The heads table (`aggregate_heads`, or `stream_heads` for the stream layout).
    public var headsTable = QualifiedName(name: "aggregate_heads")
    /// How the migration creates the events table: plain (default) or range-partitioned.
    public var partitioning = EventPartitioning.none
    public var checkpointsTable = QualifiedName(name: "consumer_checkpoints")
    public var gapSkipsTable = QualifiedName(name: "consumer_gap_skips")
    public var deadLettersTable = QualifiedName(name: "consumer_dead_letters")
    /// Instances and their heartbeats (eventsalsa/worker's `worker_nodes`), beside the checkpoints.
    public var nodesTable: QualifiedName { QualifiedName(schema: self.checkpointsTable.schema, name: "worker_nodes") }
    /// Units of work with their owner, lease and fencing token (eventsalsa/worker's
    /// `consumer_assignments` plus two columns), beside the checkpoints.
    /// The read-your-writes function, beside the checkpoints.
    public var waitFunction: QualifiedName { QualifiedName(schema: self.checkpointsTable.schema, name: "projectionist_wait_for") }
    public var assignmentsTable: QualifiedName { QualifiedName(schema: self.checkpointsTable.schema, name: "consumer_assignments") }
    /// The channel the notify trigger (and the listener) uses; nil or empty: polling only.
    public var notifyChannel: String? = "projectionist_events"
    /// Whether the migration creates the events and aggregate-heads tables.
    public var manageEventStore = true
    /// Whether the migration installs the statement-level notify trigger on the events table.
    /// Off by default: it costs concurrent writers about 20 % of their append throughput (NOTIFY
    /// serialises commits), and the runtime's shared head probe finds new events within ~50 ms.
    public var notifyTrigger = false

    public init() {}

    /// The event store's part of the names.
    public var eventStore: EventStoreConfiguration {
        EventStoreConfiguration(eventsTable: self.eventsTable, layout: self.layout, headsTable: self.headsTable)
    }

    /// Every schema named by a qualified table name, once, in order.
    var schemas: [String] {
        var seen: [String] = []
        for name in [self.eventsTable, self.headsTable, self.checkpointsTable, self.gapSkipsTable, self.deadLettersTable] {
            if let schema = name.schema, !seen.contains(schema) { seen.append(schema) }
        }
        return seen
    }
}
