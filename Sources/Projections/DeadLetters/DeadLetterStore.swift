import Foundation
import EventStore
import Postgres

/// Whether a dead letter's event was passed over (`on_error: skip`) or waits with the rest of
/// its aggregate (`on_error: park`).
public enum DeadLetterStatus: String, Sendable, Codable {
    case skipped
    case parked
}

/// The one owner of the dead-letter table's SQL as the runners write it, for one schema: the
/// letter of a failing event, the letters of the events parked behind it, the parked set and
/// the counts `status` shows. Every change of a unit's parked set raises its checkpoint row's
/// `parked_version` in the same transaction (`bumpStatement`).
public struct DeadLetterStore: Sendable {
    public let schema: Schema

    public init(schema: Schema = Schema()) {
        self.schema = schema
    }

    var table: String { self.schema.deadLettersTable.quoted }

    /// The dead letter of an event whose handler failed after its retries (attempts 1).
    func letterStatement(_ unit: String, _ event: PersistedEvent, _ error: HandlerError, status: DeadLetterStatus) -> (
        String, [any PostgresEncodable]
    ) {
        (
            """
            INSERT INTO \(self.table) (consumer_name, global_position, event_id, event_type, error, aggregate_type, aggregate_id,
                status, attempts, failed_at, last_failed_at)
            VALUES ($1, $2, $3::uuid, $4, $5, $6, $7, $8, 1, now(), now())
            """,
            [
                unit, error.position, error.eventID, error.eventType, error.underlying, event.aggregateType, event.aggregateID,
                status.rawValue,
            ]
        )
    }

    /// The dead letters (status `parked`, attempts 0: never tried) of events whose aggregate is
    /// parked, in one statement; `parked` gives each aggregate's first parked position for the
    /// error text.
    func parkedBehindStatement(_ unit: String, _ events: [PersistedEvent], parked: ParkedAggregates) -> (
        String, [any PostgresEncodable]
    ) {
        let firsts = events.map { parked.first[AggregateKey(of: $0)] ?? $0.globalPosition }
        return (
            """
            INSERT INTO \(self.table) (consumer_name, global_position, event_id, event_type, error, aggregate_type, aggregate_id,
                status, attempts, failed_at)
            SELECT $1, u.position, u.event_id::uuid, u.event_type,
                'not applied: aggregate ' || u.aggregate_type || '/' || u.aggregate_id || ' is parked since position ' || u.first,
                u.aggregate_type, u.aggregate_id, 'parked', 0, now()
            FROM unnest($2::text[]::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]::bigint[])
                AS u(position, event_id, event_type, aggregate_type, aggregate_id, first)
            """,
            [
                unit, PostgresTextArray(events.map { "\($0.globalPosition)" }),
                PostgresTextArray(events.map { $0.eventID.uuidString.lowercased() }), PostgresTextArray(events.map(\.eventType)),
                PostgresTextArray(events.map(\.aggregateType)), PostgresTextArray(events.map(\.aggregateID)),
                PostgresTextArray(firsts.map { "\($0)" }),
            ]
        )
    }

    /// Raises the unit's `parked_version`: runners reload the parked set at their next batch.
    public func bumpStatement(_ unit: String) -> (String, [any PostgresEncodable]) {
        ("UPDATE \(self.schema.checkpointsTable.quoted) SET parked_version = parked_version + 1 WHERE consumer_name = $1", [unit])
    }

    /// The unit's parked aggregates, read at `version` (under the checkpoint row's lock).
    func parked(_ unit: String, version: Int64, on connection: some PostgresQuerying) async throws -> ParkedAggregates {
        var parked = ParkedAggregates(version: version)
        for row in try await connection.query(
            """
            SELECT aggregate_type, aggregate_id, min(global_position) FROM \(self.table)
            WHERE consumer_name = $1 AND status = 'parked' GROUP BY aggregate_type, aggregate_id
            """, [unit])
        {
            let key = AggregateKey(type: try row.decode(String?.self, at: 0) ?? "", id: try row.decode(String?.self, at: 1) ?? "")
            parked.first[key] = try row.decode(Int64.self, at: 2)
        }
        return parked
    }

    /// How many aggregates each of `units` has parked (units with none are left out).
    public func parkedCounts(_ units: [String], on connection: some PostgresQuerying) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await connection.query(
            """
            SELECT consumer_name, count(DISTINCT (aggregate_type, aggregate_id)) FROM \(self.table)
            WHERE consumer_name = ANY($1::text[]) AND status = 'parked' GROUP BY consumer_name
            """, [PostgresTextArray(units)])
        {
            counts[try row.decode(String.self, at: 0)] = Int(try row.decode(Int64.self, at: 1))
        }
        return counts
    }
}
