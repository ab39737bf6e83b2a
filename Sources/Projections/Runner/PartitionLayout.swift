import EventStore
import Postgres

/// The checkpoint rows a projection has, whatever partition layout wrote them: `name` alone
/// (unpartitioned) or `name#k/N`. Changing N on a projection with progress would apply some
/// events twice and skip others, so it is refused until the projection is reset.
public struct PartitionLayout: Sendable {
    public struct Row: Sendable, Equatable {
        public var unit: String
        public var partition: WorkUnit.Partition?
        public var position: Int64
    }

    /// The projection's rows of any layout.
    public static func rows(of projection: String, schema: Schema, on connection: some PostgresQuerying) async throws -> [Row] {
        try await connection.query(
            """
            SELECT consumer_name, last_position FROM \(schema.checkpointsTable.quoted)
            WHERE consumer_name = $1 OR left(consumer_name, length($1) + 1) = $1 || '#' ORDER BY consumer_name
            """, [projection]
        ).compactMap { row in
            let unit = try row.decode(String.self, at: 0)
            let parsed = WorkUnit.parse(unit)
            guard parsed.projection == projection else { return nil }
            return Row(unit: unit, partition: parsed.partition, position: try row.decode(Int64.self, at: 1))
        }
    }

    /// The rows with progress whose layout is not `partitions`.
    static func conflicting(_ rows: [Row], partitions: Int) -> [Row] {
        rows.filter { row in row.position > 0 && (row.partition?.count ?? 1) != max(1, partitions) }
    }
}

extension StartupCheck {
    /// - Throws: `SchemaError` naming the first projection whose progress was made under another
    ///   number of partitions than configured, and saying to reset it.
    public static func verifyPartitions(_ projections: [any Projection], schema: Schema, on connection: some PostgresQuerying)
        async throws
    {
        for projection in projections {
            let rows = try await PartitionLayout.rows(of: projection.name, schema: schema, on: connection)
            guard let row = PartitionLayout.conflicting(rows, partitions: projection.partitions).first else { continue }
            let was = row.partition?.count ?? 1
            throw SchemaError(
                "projection '\(projection.name)' has progress under partitions: \(was) (checkpoint '\(row.unit)' at \(row.position)) but is configured with partitions: \(max(1, projection.partitions)): run `projectionist reset \(projection.name)` to rebuild it in the new layout, or set partitions back to \(was)")
        }
    }
}
