import EventStore
import Postgres

/// Removes a retired projection: its tables (through its drop SQL, else its reset action) and
/// its checkpoint and assignment rows, in one transaction.
public enum ProjectionDrop {
    /// Why `drop` refused.
    public struct Refused: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// - Parameter dropSQL: statements that remove the projection's tables; nil runs its `reset`.
    /// - Returns: how many checkpoint rows went.
    /// - Throws: `Refused` when the projection is live: it has no rows, or no successor took
    ///   over its published views.
    @discardableResult
    public static func drop(_ projection: any Projection, dropSQL: String?, schema: Schema, on connection: PostgresConnection)
        async throws -> Int
    {
        try await connection.transaction { tx in
            let rows = try await PartitionLayout.rows(of: projection.name, schema: schema, on: tx)
            let units = rows.map(\.unit)
            let retired = try await tx.query(
                """
                SELECT count(*) FILTER (WHERE retired_at IS NOT NULL), count(*) FROM (
                    SELECT retired_at FROM \(schema.checkpointsTable.quoted) WHERE consumer_name = ANY($1::text[])
                    ORDER BY consumer_name FOR UPDATE) AS locked
                """, [PostgresTextArray(units)])[0]
            let (retiredCount, count) = (try retired.decode(Int64.self, at: 0), try retired.decode(Int64.self, at: 1))
            guard count > 0, retiredCount == count else {
                throw Refused(
                    description: count == 0
                        ? "projection '\(projection.name)' has no checkpoint: nothing to drop (was it ever run?)"
                        : "projection '\(projection.name)' is live: no successor has taken over its published views yet. Only a retired projection can be dropped (see `status`)")
            }
            if let dropSQL, dropSQL.contains(where: { !$0.isWhitespace }) {
                try await tx.execute(script: dropSQL)
            } else {
                try await projection.reset(in: tx)
            }
            try await CheckpointStore(schema: schema).remove(units, on: tx)
            try await tx.query("DELETE FROM \(schema.assignmentsTable.quoted) WHERE consumer_name = ANY($1::text[])", [PostgresTextArray(units)])
            return units.count
        }
    }
}
