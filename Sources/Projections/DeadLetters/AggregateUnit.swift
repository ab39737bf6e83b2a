import EventStore
import Postgres

extension WorkUnit {
    /// The unit of `projection` that `aggregate`'s events belong to: the projection itself, or
    /// the partition its aggregate hashes to (`partitionExpression`, computed by the server).
    public static func unit(of aggregate: AggregateKey, in projection: any Projection, on connection: some PostgresQuerying) async throws
        -> WorkUnit
    {
        let count = max(1, projection.partitions)
        guard count > 1 else { return WorkUnit(projection: projection, partition: nil) }
        let index = try await connection.query(
            "SELECT \(Self.partitionExpression(count: "\(count)", layout: .aggregate))::int FROM (SELECT $1::text AS aggregate_type, $2::text AS aggregate_id) AS a",
            [aggregate.type, aggregate.id])[0].decode(Int32.self, at: 0)
        return WorkUnit(projection: projection, partition: Partition(index: Int(index), count: count))
    }
}
