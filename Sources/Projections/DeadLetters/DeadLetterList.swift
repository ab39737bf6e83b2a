import EventStore
import Foundation
import Postgres

/// One row of the dead-letter table, as `dead-letters list` shows it.
public struct DeadLetter: Sendable, Equatable {
    /// The checkpoint name it was written under: the projection's, or `name#k/N`.
    public var unit: String
    public var position: Int64
    public var eventID: String?
    public var eventType: String?
    /// Nil in rows written before the column existed.
    public var aggregate: AggregateKey?
    public var status: DeadLetterStatus
    /// The tries: the first failure is 1; an event parked behind a failing one, never tried, 0.
    public var attempts: Int
    /// The handler's error (with its SQLSTATE when the database raised it).
    public var error: String
    public var failedAt: Date
    /// When its last try failed (nil for one never tried).
    public var lastFailedAt: Date?

    /// The projection's name (the unit's without its partition).
    public var projection: String { WorkUnit.parse(self.unit).projection }
    /// The partition, `k/N`, or nil.
    public var partition: WorkUnit.Partition? { WorkUnit.parse(self.unit).partition }
}

/// Reads dead letters for the operator.
public enum DeadLetterList {
    static let columns =
        "consumer_name, global_position, event_id::text, event_type, aggregate_type, aggregate_id, status, attempts, error, failed_at, last_failed_at"

    /// The dead letters of `projection` (every unit of any partition layout), or of every
    /// projection when nil, ordered by projection, position and unit.
    public static func list(projection: String? = nil, schema: Schema, on connection: some PostgresQuerying) async throws -> [DeadLetter] {
        let rows = try await connection.query(
            """
            SELECT \(self.columns) FROM \(schema.deadLettersTable.quoted)
            WHERE $1::text IS NULL OR consumer_name = $1 OR left(consumer_name, length($1) + 1) = $1 || '#'
            """, [projection])
        let letters = try rows.map(Self.letter).filter { projection == nil || $0.projection == projection }
        return letters.sorted { ($0.projection, $0.position, $0.unit) < ($1.projection, $1.position, $1.unit) }
    }

    /// The dead letters of `units` matching `condition` (SQL over the table's columns, with
    /// parameters from `$2` on; `$1` is the units), in unit and position order.
    static func letters(
        of units: [String], where condition: String = "true", _ parameters: [any PostgresEncodable] = [], schema: Schema,
        on connection: some PostgresQuerying
    ) async throws -> [DeadLetter] {
        try await connection.query(
            """
            SELECT \(self.columns) FROM \(schema.deadLettersTable.quoted)
            WHERE consumer_name = ANY($1::text[]) AND (\(condition)) ORDER BY consumer_name, global_position, id
            """, [PostgresTextArray(units)] + parameters
        ).map(Self.letter)
    }

    static func letter(_ row: Row) throws -> DeadLetter {
        let type = try row.decode(String?.self, at: 4)
        let id = try row.decode(String?.self, at: 5)
        return DeadLetter(
            unit: try row.decode(String.self, at: 0), position: try row.decode(Int64.self, at: 1),
            eventID: try row.decode(String?.self, at: 2), eventType: try row.decode(String?.self, at: 3),
            aggregate: type.flatMap { type in id.map { AggregateKey(type: type, id: $0) } },
            status: DeadLetterStatus(rawValue: try row.decode(String.self, at: 6)) ?? .skipped,
            attempts: Int(try row.decode(Int32.self, at: 7)), error: try row.decode(String.self, at: 8),
            failedAt: try row.decode(Date.self, at: 9), lastFailedAt: try row.decode(Date?.self, at: 10))
    }
}
