import Postgres

/// Where the store's tables are and whether appends notify.
public struct EventStoreConfiguration: Sendable, Hashable {
    /// Default `events`.
    public var eventsTable: QualifiedName
    /// Default `aggregate_heads`.
    public var aggregateHeadsTable: QualifiedName
    /// When set, an append calls `pg_notify(channel, last global position)` in its transaction,
    /// so the notification is delivered only if it commits. Leave nil when the notify trigger is
    /// installed (it does the same for every writer).
    public var notifyChannel: String?

    public init(
        eventsTable: QualifiedName = QualifiedName(name: "events"),
        aggregateHeadsTable: QualifiedName = QualifiedName(name: "aggregate_heads"), notifyChannel: String? = nil
    ) {
        self.eventsTable = eventsTable
        self.aggregateHeadsTable = aggregateHeadsTable
        self.notifyChannel = notifyChannel
    }

    public static let `default` = EventStoreConfiguration()
}
