import EventStore
import Postgres

/// `migrate`'s upkeep of a RANGE-partitioned events table it owns: the range holding the log's
/// head and the next two exist after every run (`PartitionPlan`). The daemon never creates one,
/// so appends keep working only while `migrate` runs (from a timer, a deploy) before the log
/// reaches the last range.
struct PartitionMaintenance: Sendable {
    var schema: Schema
    var file: String

    /// Creates the missing ranges in `tx`; returns a line for each one created.
    /// - Throws: `ConfigurationError` at `store.partition_size` when the table's ranges were
    ///   made with another size.
    func run(in tx: Transaction) async throws -> [String] {
        guard self.schema.manageEventStore, case .native(let size, _) = self.schema.partitioning else { return [] }
        let events = self.schema.eventsTable
        let partitioned = try await tx.query(
            "SELECT relkind = 'p' FROM pg_class WHERE oid = $1::regclass", [events.quoted])
        guard try partitioned.first?.decode(Bool.self, at: 0) == true else {
            throw ConfigurationError(
                file: self.file, keyPath: "store.partitioning",
                message: "\(events) is not a partitioned table, but store.partitioning is native: set store.partitioning: none, or move the events into a partitioned table")
        }
        let head = try await tx.query(
            """
            SELECT greatest((SELECT coalesce(max(global_position), 0) FROM \(events.quoted)),
                            coalesce(pg_sequence_last_value(\(Schema.positionSequenceExpression)), 0))
            """, [events.quoted])[0].decode(Int64.self, at: 0)
        // A range partition's bound as the catalog prints it: FOR VALUES FROM ('1') TO ('11').
        let existing = try await tx.query(
            """
            SELECT c.relname::text, b[1], b[2]
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
                 regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''?([^'')]*)''?\\) TO \\(''?([^'')]*)''?\\)') AS b
            WHERE i.inhparent = $1::regclass
            """, [events.quoted]
        ).map { row in
            PartitionPlan.Existing(
                name: try row.decode(String.self, at: 0), from: Int64(try row.decode(String.self, at: 1)),
                to: Int64(try row.decode(String.self, at: 2)))
        }
        let plan: PartitionPlan
        do {
            plan = try PartitionPlan(head: head, size: size, existing: existing)
        } catch let mismatch as PartitionPlan.Mismatch {
            throw ConfigurationError(
                file: self.file, keyPath: "store.partition_size",
                message: "range \(mismatch.range.first)–\(mismatch.range.last) (ranges of \(size) positions) overlaps partition \(mismatch.partition.name) of \(events) (from \(mismatch.partition.from.map(String.init) ?? "MINVALUE") to \(mismatch.partition.to.map(String.init) ?? "MAXVALUE")): set store.partition_size to the size the table's ranges were made with")
        }
        var created: [String] = []
        for range in plan.missing {
            try await tx.execute(script: Migration.partitionSQL(range, of: events))
            created.append("created partition \(range.partitionName(of: events.name)) (positions \(range.first)–\(range.last))")
        }
        return created
    }
}
