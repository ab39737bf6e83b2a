import EventStore
import Postgres

/// Deletes dead letters without applying them (`dead-letters discard`): their events are lost
/// to the projection, and an aggregate left without parked letters is no longer parked.
public enum DeadLetterDiscard {
    /// Which letters of a projection.
    public enum Selection: Sendable, Equatable {
        /// Every letter of one aggregate (in its unit).
        case aggregate(AggregateKey)
        /// The letter at one position (in whichever unit has it).
        case position(Int64)
        /// Every letter of the projection.
        case all
    }

    /// What was deleted.
    public struct Outcome: Sendable, Equatable {
        /// The letters deleted, in unit and position order.
        public var deleted: [DeadLetter] = []
        public var skipped: Int { self.deleted.filter { $0.status == .skipped }.count }
        public var parked: Int { self.deleted.filter { $0.status == .parked }.count }
        /// The aggregates that were parked and are not any more.
        public var released: [AggregateKey] = []
    }

    /// In one transaction: locks the checkpoint rows of the units concerned (in name order,
    /// waiting for their batches in flight; an aggregate's unit is the partition it hashes to), deletes the selected letters, and raises the
    /// `parked_version` of each unit whose parked set changed.
    public static func discard(
        _ selection: Selection, of projection: any Projection, schema: Schema, on connection: PostgresConnection
    ) async throws -> Outcome {
        var units = WorkUnit.units(of: projection).map(\.name)
        var condition = "true"
        var parameters: [any PostgresEncodable] = []
        switch selection {
        case .aggregate(let aggregate):
            units = [try await WorkUnit.unit(of: aggregate, in: projection, on: connection).name]
            condition = "aggregate_type = $2 AND aggregate_id = $3"
            parameters = [aggregate.type, aggregate.id]
        case .position(let position):
            condition = "global_position = $2"
            parameters = [position]
        case .all:
            break
        }
        let store = DeadLetterStore(schema: schema)
        return try await connection.transaction { tx -> Outcome in
            // The rows there are (a unit never run has none, and no letters), in name order.
            try await tx.query(
                "SELECT FROM \(schema.checkpointsTable.quoted) WHERE consumer_name = ANY($1::text[]) ORDER BY consumer_name FOR UPDATE",
                [PostgresTextArray(units)])
            var outcome = Outcome()
            outcome.deleted = try await tx.query(
                """
                DELETE FROM \(store.table) WHERE consumer_name = ANY($1::text[]) AND (\(condition))
                RETURNING \(DeadLetterList.columns)
                """, [PostgresTextArray(units)] + parameters
            ).map(DeadLetterList.letter).sorted { ($0.unit, $0.position) < ($1.unit, $1.position) }
            let changed = Set(outcome.deleted.filter { $0.status == .parked }.map(\.unit))
            for unit in changed.sorted() {
                let (bump, bumpParameters) = store.bumpStatement(unit)
                try await tx.query(bump, bumpParameters)
            }
            let touched = Set(outcome.deleted.filter { $0.status == .parked }.compactMap { letter in letter.aggregate.map { (letter.unit, $0) } }.map(Pair.init))
            for pair in touched.sorted(by: { ($0.unit, $0.aggregate) < ($1.unit, $1.aggregate) }) {
                let remaining = try await tx.query(
                    """
                    SELECT EXISTS (SELECT FROM \(store.table) WHERE consumer_name = $1 AND status = 'parked'
                        AND aggregate_type = $2 AND aggregate_id = $3)
                    """, [pair.unit, pair.aggregate.type, pair.aggregate.id])[0].decode(Bool.self, at: 0)
                if !remaining { outcome.released.append(pair.aggregate) }
            }
            return outcome
        }
    }

    private struct Pair: Hashable {
        var unit: String
        var aggregate: AggregateKey
        init(_ pair: (String, AggregateKey)) {
            self.unit = pair.0
            self.aggregate = pair.1
        }
    }
}
