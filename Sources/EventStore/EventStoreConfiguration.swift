import Postgres

/// Where the store's tables are, which layout they have, and whether appends notify.
public struct EventStoreConfiguration: Sendable, Hashable {
    /// Default `events`.
    public var eventsTable: QualifiedName
    /// The identity columns and the heads table's shape: `aggregate_*` (default) or `stream_*`.
    public var layout: EventLayout
    /// The heads table; default the layout's (`aggregate_heads` or `stream_heads`).
    public var headsTable: QualifiedName
    /// When set, an append calls `pg_notify(channel, last global position)` in its transaction,
    /// so the notification is delivered only if it commits. Leave nil when the notify trigger is
    /// installed (it does the same for every writer).
    public var notifyChannel: String?

    public init(
        eventsTable: QualifiedName = QualifiedName(name: "events"), layout: EventLayout = .aggregate,
        headsTable: QualifiedName? = nil, notifyChannel: String? = nil
    ) {
        self.eventsTable = eventsTable
        self.layout = layout
        self.headsTable = headsTable ?? layout.defaultHeadsTable
        self.notifyChannel = notifyChannel
    }

    public static let `default` = EventStoreConfiguration()
}
