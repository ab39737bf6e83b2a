import EventStore
import Postgres
import Projections

/// Switching from eventsalsa/projector: `migrate` copies the projector's checkpoint of each
/// configured projection (`projection_checkpoints`, beside the checkpoints table) into the
/// projection's own checkpoint rows, so the daemon carries on where the projector stopped.
///
/// Only a projection without any row of its own yet (no unit, no row of an earlier partition
/// layout) gets one: every later `migrate` leaves it alone, and a projection `reset` or run
/// here is never moved. The projector's last position covers every aggregate, so each
/// partition of a partitioned projection starts from it. The projector's tables are only read.
struct ProjectorCheckpointImport: Sendable {
    var configuration: ProjectionistConfiguration

    /// eventsalsa/projector's checkpoint table, in the schema of ours.
    var source: QualifiedName {
        QualifiedName(schema: self.configuration.schema.checkpointsTable.schema, name: "projection_checkpoints")
    }

    /// Copies the checkpoints in `tx`; returns a line for each projection given one.
    func run(in tx: Transaction) async throws -> [String] {
        let source = self.source
        let found = try await tx.query(
            """
            SELECT count(*) = 2 FROM pg_attribute
            WHERE attrelid = to_regclass($1) AND attname IN ('projection_name', 'last_position') AND NOT attisdropped
            """, [source.quoted])
        guard try found[0].decode(Bool.self, at: 0) else { return [] }
        let configured = self.configuration.units
        let projections = configured.map(\.projection)
        let units = configured.map { WorkUnit.name($0.projection, $0.partition) }
        guard !units.isEmpty else { return [] }
        let checkpoints = self.configuration.schema.checkpointsTable.quoted
        let copied = try await tx.query(
            """
            INSERT INTO \(checkpoints) (consumer_name, last_position)
            SELECT u.unit, p.last_position
            FROM unnest($1::text[], $2::text[]) AS u(projection, unit)
            JOIN \(source.quoted) p ON p.projection_name = u.projection
            WHERE p.last_position > 0
              AND NOT EXISTS (SELECT 1 FROM \(checkpoints) c
                              WHERE c.consumer_name = u.projection OR starts_with(c.consumer_name, u.projection || '#'))
            ORDER BY u.unit
            ON CONFLICT (consumer_name) DO NOTHING
            RETURNING consumer_name, last_position
            """, [PostgresTextArray(projections), PostgresTextArray(units)])
        var positions: [String: Int64] = [:]
        for row in copied {
            positions[WorkUnit.parse(try row.decode(String.self, at: 0)).projection] = try row.decode(Int64.self, at: 1)
        }
        return self.configuration.projections.compactMap { projection in
            positions[projection.name].map { "checkpoint of \(projection.name) copied from \(source) (eventsalsa/projector): \($0)" }
        }
    }
}
