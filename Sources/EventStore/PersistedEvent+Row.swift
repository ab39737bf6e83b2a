import Postgres

extension PersistedEvent {
    /// The `events` columns a `PersistedEvent` is decoded from besides `global_position`, in the
    /// order `init(row:from:globalPosition:)` reads them: the layout's three identity columns,
    /// then the rest. Select them as they are or each inside an expression of the same type
    /// (e.g. a `CASE`).
    public static func columns(_ layout: EventLayout) -> [String] {
        layout.identityColumns + [
            "event_id", "event_type", "event_version", "payload", "metadata", "trace_id", "correlation_id", "causation_id",
            "created_at",
        ]
    }

    /// Decodes the event at `globalPosition` from `row`, whose column `offset` holds the first of
    /// `columns` and the next ones the rest, in order.
    /// - Throws: `PostgresError` (`.decoding`) naming the events column that does not decode.
    public init(row: Row, from offset: Int, globalPosition: Int64) throws {
        func column<T: PostgresDecodable>(_ index: Int) throws -> T {
            do {
                return try row.decode(at: offset + index)
            } catch var error as PostgresError {
                let names = zip(Self.columns(.aggregate), Self.columns(.stream)).map { $0 == $1 ? $0 : "\($0)/\($1)" }
                error.message = "events.\(names[index]): \(error.message)"
                throw error
            }
        }
        self.init(
            globalPosition: globalPosition, aggregateType: try column(0), aggregateID: try column(1),
            aggregateVersion: try column(2), eventID: try column(3), eventType: try column(4), eventVersion: try column(5),
            payload: try column(6), metadata: try column(7), traceID: try column(8), correlationID: try column(9),
            causationID: try column(10), createdAt: try column(11))
    }

    /// Decodes a row selected as `global_position` followed by `columns`.
    public init(row: Row) throws {
        try self.init(row: row, from: 1, globalPosition: try row.decode(at: 0))
    }
}
