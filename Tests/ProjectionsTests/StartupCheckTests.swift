import EventStore
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct StartupCheckTests {
    @Test("a migrated database passes; a missing events column is named", arguments: PersistedEvent.columns(.aggregate))
    func eventColumns(dropped: String) async throws {
        let db = try await TestDatabase.migrated("startup")
        let connection = try await db.connect()
        try await StartupCheck.verify(Schema(), allowSequenceCache: false, on: connection)
        try await connection.query("ALTER TABLE events DROP COLUMN \(QualifiedName.quoteIdentifier(dropped)) CASCADE")
        let error = await #expect(throws: SchemaError.self) {
            try await StartupCheck.verify(Schema(), allowSequenceCache: false, on: connection)
        }
        #expect(error?.message == "table events lacks column(s) \(dropped): run `projectionist migrate` first")
    }
}

@Suite(.database, .timeLimit(.minutes(2)))
struct StartupCheckColumnTests {
    /// Every column `migrate` creates in the tables the daemon reads and writes (the reference's
    /// tables), written out here rather than taken from the check itself.
    static let columns: [(table: String, column: String)] = [
        ("consumer_checkpoints", "consumer_name"), ("consumer_checkpoints", "last_position"), ("consumer_checkpoints", "created_at"),
        ("consumer_checkpoints", "updated_at"), ("consumer_checkpoints", "state"), ("consumer_checkpoints", "last_error"),
        ("consumer_checkpoints", "heartbeat_at"), ("consumer_checkpoints", "head_position"), ("consumer_checkpoints", "gap_position"),
        ("consumer_checkpoints", "gap_holder"), ("consumer_checkpoints", "fencing_token"), ("consumer_checkpoints", "events_per_second"),
        ("consumer_checkpoints", "retired_at"), ("consumer_checkpoints", "successor"),
        ("consumer_gap_skips", "id"), ("consumer_gap_skips", "consumer_name"), ("consumer_gap_skips", "gap_position"),
        ("consumer_gap_skips", "reason"), ("consumer_gap_skips", "skipped_at"), ("consumer_gap_skips", "highest_visible_position"),
        ("consumer_gap_skips", "worker_id"), ("consumer_gap_skips", "skip_to_position"), ("consumer_gap_skips", "first_seen_at"),
        ("consumer_dead_letters", "id"), ("consumer_dead_letters", "consumer_name"), ("consumer_dead_letters", "global_position"),
        ("consumer_dead_letters", "event_id"), ("consumer_dead_letters", "event_type"), ("consumer_dead_letters", "error"),
        ("consumer_dead_letters", "failed_at"),
        ("worker_nodes", "worker_id"), ("worker_nodes", "heartbeat_at"), ("worker_nodes", "created_at"), ("worker_nodes", "updated_at"),
        ("worker_nodes", "hostname"), ("worker_nodes", "pid"),
        ("consumer_assignments", "consumer_name"), ("consumer_assignments", "worker_id"), ("consumer_assignments", "created_at"),
        ("consumer_assignments", "updated_at"), ("consumer_assignments", "lease_expires_at"), ("consumer_assignments", "fencing_token"),
    ]

    @Test("every column of every table the daemon uses is checked: a missing one is named with its table")
    func everyColumn() async throws {
        let db = try await TestDatabase.migrated("startup_columns")
        let connection = try await db.connect()
        for (table, column) in Self.columns {
            try await connection.query("BEGIN")
            try await connection.query("ALTER TABLE \(table) DROP COLUMN \(column) CASCADE")
            let error = await #expect(throws: SchemaError.self, "\(table).\(column)") {
                try await StartupCheck.verify(Schema(), allowSequenceCache: false, on: connection)
            }
            #expect(error?.message == "table \(table) lacks column(s) \(column): run `projectionist migrate` first")
            try await connection.query("ROLLBACK")
        }
        try await StartupCheck.verify(Schema(), allowSequenceCache: false, on: connection)
    }
}
