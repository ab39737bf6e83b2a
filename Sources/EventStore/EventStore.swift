import Foundation
import Postgres

/// The write side: append events to an aggregate's stream inside the caller's transaction,
/// and read streams and the log back. Schema-compatible with eventsalsa/store.
public struct EventStore: Sendable {
    public let configuration: EventStoreConfiguration

    public init(_ configuration: EventStoreConfiguration = .default) {
        self.configuration = configuration
    }

    /// The columns every read selects, in `PersistedEvent(row:)`'s order.
    /// `global_position` and the columns a `PersistedEvent` is decoded from, in this store's layout.
    var columns: String { (["global_position"] + PersistedEvent.columns(self.layout)).joined(separator: ", ") }
    var layout: EventLayout { self.configuration.layout }

    // MARK: - Append

    /// Appends `events` (all of one aggregate) after checking `expected` against the
    /// aggregate's head, in the caller's transaction: nothing is visible until it commits.
    ///
    /// One statement does it all: it reserves the versions in the heads table (row-locked
    /// until commit, so concurrent writers of one aggregate serialise there), inserts the events
    /// with consecutive versions in order, and notifies when a channel is configured.
    ///
    /// - Throws: `EventStoreError` `.invalidAppend` (empty list, several aggregates) before touching
    ///   the database; `.versionConflict` when `expected` is wrong or another writer won the race
    ///   (then the caller's transaction must be rolled back); `.duplicateEventID`; `PostgresError`.
    @discardableResult
    public func append(_ events: [Event], expected: ExpectedVersion, in transaction: Transaction) async throws
        -> AppendResult
    {
        guard let first = events.first else {
            throw EventStoreError(code: .invalidAppend, message: "append needs at least one event")
        }
        guard events.allSatisfy({ $0.aggregateType == first.aggregateType && $0.aggregateID == first.aggregateID })
        else {
            throw EventStoreError(
                code: .invalidAppend,
                message: "all events of one append must belong to one aggregate (first: \(first.aggregateType) \(first.aggregateID))",
                aggregateType: first.aggregateType, aggregateID: first.aggregateID)
        }
        if case .exact(let version) = expected, version < 0 {
            throw EventStoreError(code: .invalidAppend, message: "expected version \(version) is negative")
        }
        let (sql, parameters) = self.appendStatement(events, expected: expected)
        let result: QueryResult
        do {
            result = try await transaction.query(sql, parameters)
        } catch let error as PostgresError where error.isUniqueViolation {
            throw self.uniqueViolation(error, first: first, expected: expected)
        }
        guard result.rowCount == events.count else {
            // The head did not match, so the reservation updated no row and nothing was inserted.
            let actual = try? await self.currentVersion(type: first.aggregateType, id: first.aggregateID, on: transaction)
            throw EventStoreError(
                code: .versionConflict,
                message: "\(first.aggregateType) \(first.aggregateID): expected \(expected), found version \(actual.map(String.init) ?? "unknown")",
                aggregateType: first.aggregateType, aggregateID: first.aggregateID, expected: expected, actualVersion: actual)
        }
        var persisted: [PersistedEvent] = []
        persisted.reserveCapacity(events.count)
        for (event, row) in zip(events, result) {
            persisted.append(
                PersistedEvent(
                    globalPosition: try row.decode(Int64.self, at: 0), aggregateType: event.aggregateType,
                    aggregateID: event.aggregateID, aggregateVersion: try row.decode(Int64.self, at: 1),
                    eventID: event.eventID, eventType: event.eventType, eventVersion: event.eventVersion,
                    payload: event.payload, metadata: event.metadata, traceID: event.traceID,
                    correlationID: event.correlationID, causationID: event.causationID,
                    createdAt: try row.decode(PostgresTimestamp.self, at: 2)))
        }
        return AppendResult(events: persisted)
    }

    /// The one statement of an append. Parameters: $1 type, $2 id, $3 count, $4 expected version,
    /// $5 notify channel, then 10 per event.
    func appendStatement(_ events: [Event], expected: ExpectedVersion) -> (String, [any PostgresEncodable]) {
        let heads = self.configuration.headsTable.quoted
        let layout = self.configuration.layout
        let (type, id, version) = (layout.typeColumn, layout.idColumn, layout.versionColumn)
        let reserve: String
        switch expected {
        case .noStream, .exact(0):
            // A plain INSERT: if the head exists (or another writer is creating it) this waits for
            // that writer and then fails with a unique violation, which is the conflict.
            reserve = """
                INSERT INTO \(heads) AS h (\(type), \(id), \(version), updated_at)
                VALUES ($1, $2, $3::bigint, now()) RETURNING h.\(version) AS version
                """
        case .exact:
            reserve = """
                UPDATE \(heads) AS h SET \(version) = h.\(version) + $3::bigint, updated_at = now()
                WHERE h.\(type) = $1 AND h.\(id) = $2 AND h.\(version) = $4::bigint
                RETURNING h.\(version) AS version
                """
        case .any:
            reserve = """
                INSERT INTO \(heads) AS h (\(type), \(id), \(version), updated_at)
                VALUES ($1, $2, $3::bigint, now())
                ON CONFLICT (\(type), \(id))
                DO UPDATE SET \(version) = h.\(version) + EXCLUDED.\(version), updated_at = now()
                RETURNING h.\(version) AS version
                """
        }
        var expectedVersion: Int64 = 0
        if case .exact(let version) = expected { expectedVersion = version }
        var parameters: [any PostgresEncodable] = [
            events[0].aggregateType, events[0].aggregateID, Int64(events.count), expectedVersion,
            self.configuration.notifyChannel.map { $0.postgresParameter } ?? PostgresParameter(oid: PostgresType.text, format: .text, bytes: nil),
        ]
        var rows: [String] = []
        rows.reserveCapacity(events.count)
        for (index, event) in events.enumerated() {
            let base = parameters.count
            func p(_ offset: Int, _ cast: String) -> String { "$\(base + offset)::\(cast)" }
            rows.append(
                "(\(index + 1), \(p(1, "uuid")), \(p(2, "text")), \(p(3, "int")), \(p(4, "bytea")), \(p(5, "jsonb")), "
                    + "\(p(6, "text")), \(p(7, "text")), \(p(8, "text")), \(p(9, "timestamptz")))")
            parameters += [
                event.eventID, event.eventType, event.eventVersion, event.payload,
                event.metadata.map { PostgresJSON(bytes: $0) }, event.traceID, event.correlationID, event.causationID,
                event.createdAt,
            ] as [any PostgresEncodable]
        }
        let events = self.configuration.eventsTable.quoted
        // pg_notify runs once (an uncorrelated subquery is evaluated once) and only when rows were
        // inserted (HAVING); the always-true comparison keeps the planner from dropping it.
        let notify =
            self.configuration.notifyChannel == nil
            ? ""
            : """
            WHERE (SELECT count(*) FROM (SELECT pg_notify($5::text, max(global_position)::text) FROM inserted
                   HAVING count(*) > 0) AS notified) >= 0
            """
        let sql = """
            WITH head AS (\(reserve)),
            inserted AS (
                INSERT INTO \(events) (\(type), \(id), \(version), event_id, event_type,
                    event_version, payload, metadata, trace_id, correlation_id, causation_id, created_at)
                SELECT $1, $2, head.version - $3::bigint + v.ord, v.event_id, v.event_type, v.event_version,
                    v.payload, v.metadata, v.trace_id, v.correlation_id, v.causation_id, coalesce(v.created_at, now())
                FROM head, (VALUES \(rows.joined(separator: ", ")))
                    AS v(ord, event_id, event_type, event_version, payload, metadata, trace_id, correlation_id,
                         causation_id, created_at)
                ORDER BY v.ord
                RETURNING global_position, \(version) AS version, created_at
            )
            SELECT global_position, version, created_at FROM inserted
            \(notify)
            ORDER BY version
            """
        return (sql, parameters)
    }

    private func uniqueViolation(_ error: PostgresError, first: Event, expected: ExpectedVersion) -> EventStoreError {
        if error.detail?.contains("(event_id)") == true {
            return EventStoreError(
                code: .duplicateEventID, message: "an event id of this append is already stored: \(error.detail ?? "")",
                aggregateType: first.aggregateType, aggregateID: first.aggregateID, underlying: error)
        }
        return EventStoreError(
            code: .versionConflict,
            message: "\(first.aggregateType) \(first.aggregateID): expected \(expected), but another writer appended first",
            aggregateType: first.aggregateType, aggregateID: first.aggregateID, expected: expected, underlying: error)
    }

    // MARK: - Reads

    /// The aggregate's (stream's) current version from the heads table (0 when it does not exist).
    public func currentVersion(type: String, id: String, on database: some PostgresQuerying) async throws -> Int64 {
        let result = try await database.query(
            """
            SELECT \(self.layout.versionColumn) FROM \(self.configuration.headsTable.quoted)
            WHERE \(self.layout.typeColumn) = $1 AND \(self.layout.idColumn) = $2
            """,
            [type, id])
        return try result.first?.decode(Int64.self, at: 0) ?? 0
    }

    /// The aggregate's events in version order, all of them or those whose version lies in
    /// `from...to` (both inclusive, either may be omitted). Unknown aggregates give an empty stream.
    public func readAggregateStream(
        type: String, id: String, from: Int64? = nil, to: Int64? = nil, on database: some PostgresQuerying
    ) async throws -> AggregateStream {
        let result = try await database.query(
            """
            SELECT \(self.columns) FROM \(self.configuration.eventsTable.quoted)
            WHERE \(self.layout.typeColumn) = $1 AND \(self.layout.idColumn) = $2
              AND ($3::bigint IS NULL OR \(self.layout.versionColumn) >= $3::bigint)
              AND ($4::bigint IS NULL OR \(self.layout.versionColumn) <= $4::bigint)
            ORDER BY \(self.layout.versionColumn)
            """, [type, id, from, to])
        return AggregateStream(aggregateType: type, aggregateID: id, events: try result.map(PersistedEvent.init(row:)))
    }

    /// Up to `limit` committed events with `global_position > position`, in position order.
    public func readEvents(after position: Int64, limit: Int, on database: some PostgresQuerying) async throws
        -> [PersistedEvent]
    {
        let result = try await database.query(
            """
            SELECT \(self.columns) FROM \(self.configuration.eventsTable.quoted)
            WHERE global_position > $1 ORDER BY global_position LIMIT $2
            """, [position, Int64(limit)])
        return try result.map(PersistedEvent.init(row:))
    }

    /// The highest committed global position visible now (0 for an empty log).
    public func latestPosition(on database: some PostgresQuerying) async throws -> Int64 {
        let result = try await database.query(
            "SELECT coalesce(max(global_position), 0) FROM \(self.configuration.eventsTable.quoted)", [])
        return try result[0].decode(Int64.self, at: 0)
    }
}
