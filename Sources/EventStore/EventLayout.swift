import Postgres

/// Which of eventsalsa/store's table layouts the event store has: the stream's identity columns
/// and the heads table. Everything else (`global_position`, `event_id`, `payload`, …) is the same
/// in both.
public enum EventLayout: String, Sendable, Hashable, CaseIterable {
    /// `aggregate_type`, `aggregate_id`, `aggregate_version` and `aggregate_heads`:
    /// eventsalsa/store before 0.1.
    case aggregate
    /// `stream_type`, `stream_id`, `stream_version` and `stream_heads`: eventsalsa/store 0.1 and
    /// later (optionally with a range-partitioned events table).
    case stream

    /// The stream's type: `aggregate_type` or `stream_type`.
    public var typeColumn: String { "\(self.rawValue)_type" }
    /// The stream's id: `aggregate_id` or `stream_id`.
    public var idColumn: String { "\(self.rawValue)_id" }
    /// The event's version within its stream: `aggregate_version` or `stream_version`.
    public var versionColumn: String { "\(self.rawValue)_version" }
    /// The three identity columns, in that order.
    public var identityColumns: [String] { [self.typeColumn, self.idColumn, self.versionColumn] }

    /// `aggregate_heads` or `stream_heads`.
    public var defaultHeadsTable: QualifiedName { QualifiedName(name: "\(self.rawValue)_heads") }
    /// The configuration key naming the heads table: `aggregate_heads_table` or `stream_heads_table`.
    public var headsTableKey: String { "\(self.rawValue)_heads_table" }
}
