import EventStore
import Postgres

/// The checks the runtime makes before it starts: the tables and columns it reads and writes
/// exist, and the position sequence hands out numbers one at a time.
public enum StartupCheck {
    // Every column `migrate` creates in the tables the runtime reads and writes (docs/reference.md's
    // tables), not only those read at start: a column missing at run time would fail for ever after READY.
    static func eventColumns(_ layout: EventLayout) -> [String] { ["global_position"] + PersistedEvent.columns(layout) }
    static let checkpointColumns = [
        "consumer_name", "last_position", "created_at", "updated_at", "state", "last_error", "heartbeat_at", "head_position",
        "gap_position", "gap_holder", "fencing_token", "events_per_second", "retired_at", "successor", "parked_version",
    ]
    static let nodeColumns = ["worker_id", "heartbeat_at", "created_at", "updated_at", "hostname", "pid", "units"]
    static let assignmentColumns = ["consumer_name", "worker_id", "created_at", "updated_at", "lease_expires_at", "fencing_token"]
    static let gapColumns = [
        "id", "consumer_name", "gap_position", "reason", "skipped_at", "highest_visible_position", "worker_id", "skip_to_position",
        "first_seen_at",
    ]
    static let deadLetterColumns = [
        "id", "consumer_name", "global_position", "event_id", "event_type", "error", "failed_at", "aggregate_type", "aggregate_id",
        "status", "attempts", "last_failed_at",
    ]

    /// - Throws: `SchemaError` naming the missing table or columns (and saying to run `migrate`),
    ///   or the sequence whose cache is larger than 1.
    public static func verify(_ schema: Schema, allowSequenceCache: Bool, on connection: PostgresConnection) async throws {
        for (table, columns) in [
            (schema.eventsTable, eventColumns(schema.layout)), (schema.checkpointsTable, checkpointColumns),
            (schema.gapSkipsTable, gapColumns), (schema.deadLettersTable, deadLetterColumns),
            (schema.nodesTable, nodeColumns), (schema.assignmentsTable, assignmentColumns),
        ] {
            let exists = try await connection.query("SELECT to_regclass($1) IS NOT NULL", [table.quoted])
            guard try exists[0].decode(Bool.self, at: 0) else {
                throw SchemaError("table \(table) does not exist: run `projectionist migrate` first")
            }
            let present = try await connection.query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
                [table.quoted]
            ).map { try $0.decode(String.self, at: 0) }
            let missing = columns.filter { !present.contains($0) }
            guard missing.isEmpty else {
                throw SchemaError(
                    "table \(table) lacks column(s) \(missing.joined(separator: ", ")): run `projectionist migrate` first")
            }
        }
        let sequence = try await connection.query(Self.sequenceQuery, [schema.eventsTable.quoted])
        guard let row = sequence.first else {
            throw SchemaError(
                "\(schema.eventsTable).global_position has no sequence: it must be BIGSERIAL, or default to nextval() of a sequence")
        }
        let name = try row.decode(String.self, at: 0)
        let cache = try row.decode(Int64.self, at: 1)
        if cache > 1 && !allowSequenceCache {
            throw SchemaError(
                "sequence \(name) has CACHE \(cache): sessions hold numbers long before they insert, so gaps cannot be decided exactly. Run `ALTER SEQUENCE \(name) CACHE 1`, or set store.allow_sequence_cache: true to accept it")
        }
    }

    /// The position sequence of the events table (`Schema.positionSequenceExpression`), with
    /// its cache size.
    static let sequenceQuery = """
        SELECT s.seqrelid::regclass::text, s.seqcache FROM pg_sequence s
        WHERE s.seqrelid = \(Schema.positionSequenceExpression)
        """
}
