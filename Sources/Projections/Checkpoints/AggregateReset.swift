import Encryption
import EventStore
import Postgres

/// Rebuilds one aggregate's rows of a read model (`reset NAME --aggregate TYPE/ID`), while
/// workers may be running the projection: the checkpoint does not move.
public enum AggregateReset {
    /// What the rebuild did.
    public struct Outcome: Sendable, Equatable {
        /// The unit the aggregate belongs to (its partition, for a partitioned projection).
        public var unit: String
        /// The unit's checkpoint: the aggregate's events up to it were applied again.
        public var checkpoint: Int64
        /// How many events were applied.
        public var applied: Int
        /// The positions passed over because they have a dead letter (the daemon did not apply
        /// them either), in order.
        public var deadLettered: [Int64]
    }

    /// Refused: the projection cannot remove one aggregate's rows (no `reset_aggregate` SQL; a
    /// Swift projection whose `resetsAggregates` is false).
    public struct NotSupported: Error, CustomStringConvertible, Sendable {
        public var projection: String
        public init(projection: String) { self.projection = projection }
        public var description: String {
            "projection '\(self.projection)' has no projections.\(self.projection).reset_aggregate: add SQL that deletes one aggregate's rows (with $aggregate_type and $aggregate_id), or reset the whole projection"
        }
    }

    /// Events applied per statement batch while rebuilding.
    static let chunk = 500

    /// In one transaction under the unit's checkpoint row lock (waiting for the batch in
    /// flight): runs the projection's `resetAggregate`, then applies every event of the aggregate
    /// up to the checkpoint that is in the projection's scope (aggregate types, event types),
    /// except those with a dead letter of that unit. A handler that fails rolls everything back.
    /// `connection` must be prepared for the projection (`Projection.prepare`).
    /// - Throws: `NotSupported` (nothing done); `HandlerError` naming the event that failed.
    public static func reset(
        _ projection: any Projection, aggregate: AggregateKey, schema: Schema, decryptor: PayloadDecryptor?,
        on connection: PostgresConnection
    ) async throws -> Outcome {
        guard projection.resetsAggregates else { throw NotSupported(projection: projection.name) }
        let events = try LetterEvents(schema: schema, projection: projection, decryptor: decryptor)
        let unit = try await WorkUnit.unit(of: aggregate, in: projection, on: connection).name
        let checkpoints = CheckpointStore(schema: schema)
        try await checkpoints.ensureRow(unit, on: connection)
        return try await connection.transaction { tx -> Outcome in
            let (checkpoint, _) = try await checkpoints.lockForReset(unit, in: tx)
            try await projection.resetAggregate(aggregate, in: tx)
            var outcome = Outcome(unit: unit, checkpoint: checkpoint, applied: 0, deadLettered: [])
            let inScope = projection.aggregateTypes.map { $0.contains(aggregate.type) } ?? true
            guard inScope else { return outcome }
            var after: Int64 = 0
            while true {
                let rows = try await tx.query(
                    """
                    SELECT e.global_position, EXISTS (SELECT FROM \(schema.deadLettersTable.quoted) d
                        WHERE d.consumer_name = $4 AND d.global_position = e.global_position)
                    FROM \(schema.eventsTable.quoted) e
                    WHERE e.\(schema.layout.typeColumn) = $1 AND e.\(schema.layout.idColumn) = $2 AND e.global_position > $3 AND e.global_position <= $5
                      AND ($6::text[] IS NULL OR e.event_type = ANY($6::text[]))
                    ORDER BY e.global_position LIMIT \(Self.chunk)
                    """,
                    [aggregate.type, aggregate.id, after, unit, checkpoint, projection.eventTypes.map(PostgresTextArray.init)])
                guard !rows.isEmpty else { break }
                var positions: [Int64] = []
                for row in rows {
                    let position = try row.decode(Int64.self, at: 0)
                    after = position
                    if try row.decode(Bool.self, at: 1) { outcome.deadLettered.append(position) } else { positions.append(position) }
                }
                try await events.apply(try await events.events(at: positions, on: tx), eachChecked: false, in: tx)
                outcome.applied += positions.count
            }
            return outcome
        }
    }
}
