import Encryption
import EventStore
import Postgres

/// Applies dead letters through the projection's handlers and deletes them: `dead-letters
/// retry`, and the daemon's own retries of parked aggregates (`retry_parked`).
///
/// Each aggregate is tried in a transaction of its own that first takes the unit's checkpoint
/// row lock (so it runs between the daemon's batches and never beside another retry), then reads
/// its parked letters again: a letter is applied once, by whoever deletes it. One that fails
/// rolls that aggregate back to a savepoint: it stays parked, and the failing letter's
/// `attempts`, `error` and `last_failed_at` are updated in the same transaction.
public enum DeadLetterRetry {
    /// Why an aggregate (or a letter) stays: the letter that failed, its error as stored, and its
    /// tries so far.
    public struct Failure: Sendable, Equatable {
        public var position: Int64
        public var error: String
        public var attempts: Int
    }

    /// What one aggregate's retry did.
    public struct AggregateResult: Sendable, Equatable {
        public var unit: String
        public var aggregate: AggregateKey
        /// The positions applied and deleted, in order (none when it failed).
        public var applied: [Int64]
        /// Nil when every letter applied.
        public var failure: Failure?
        /// Its letters still parked afterwards (all of them after a failure).
        public var stillParked: Int
    }

    /// Every aggregate tried, in the order tried; one whose letters another retry had already
    /// applied is left out.
    public struct Outcome: Sendable, Equatable {
        public var results: [AggregateResult]
        public init(results: [AggregateResult] = []) { self.results = results }
        /// True when every aggregate tried applied (also when none was).
        public var allApplied: Bool { self.results.allSatisfy { $0.failure == nil } }
    }

    /// Retries `unit`'s parked aggregates (all of them when `aggregates` is nil), in the order
    /// they were parked, each in its own transaction. `connection` must be prepared for the
    /// projection (`Projection.prepare`), as a runner's connection is.
    /// - Throws: what is no handler's failure (a lost connection, a deadlock, a missing
    ///   checkpoint row); the aggregates tried before it keep their outcome.
    public static func retry(
        projection: any Projection, unit: String, aggregates: [AggregateKey]? = nil, schema: Schema, decryptor: PayloadDecryptor?,
        on connection: PostgresConnection
    ) async throws -> Outcome {
        let events = try LetterEvents(schema: schema, projection: projection, decryptor: decryptor)
        var keys = try await self.parkedAggregates(unit: unit, schema: schema, on: connection)
        if let aggregates { keys = keys.filter(aggregates.contains) }
        var outcome = Outcome()
        for aggregate in keys {
            let result = try await connection.transaction { tx -> AggregateResult? in
                _ = try await CheckpointStore(schema: schema).lockForReset(unit, in: tx)
                let letters = try await DeadLetterList.letters(
                    of: [unit], where: "status = 'parked' AND aggregate_type = $2 AND aggregate_id = $3", [aggregate.type, aggregate.id],
                    schema: schema, on: tx)
                guard !letters.isEmpty else { return nil }
                let positions = Self.distinct(letters.map(\.position))
                if let failure = try await self.attempt(positions, unit: unit, events: events, in: tx) {
                    return AggregateResult(unit: unit, aggregate: aggregate, applied: [], failure: failure, stillParked: positions.count)
                }
                let store = DeadLetterStore(schema: schema)
                try await tx.query(
                    "DELETE FROM \(store.table) WHERE consumer_name = $1 AND status = 'parked' AND aggregate_type = $2 AND aggregate_id = $3",
                    [unit, aggregate.type, aggregate.id])
                let (bump, parameters) = store.bumpStatement(unit)
                try await tx.query(bump, parameters)
                return AggregateResult(unit: unit, aggregate: aggregate, applied: positions, failure: nil, stillParked: 0)
            }
            if let result { outcome.results.append(result) }
        }
        return outcome
    }

    /// `unit`'s parked aggregates, in the order they were parked (by their first parked position).
    public static func parkedAggregates(unit: String, schema: Schema, on connection: some PostgresQuerying) async throws -> [AggregateKey] {
        // The runner's parked set (each aggregate with its first parked position), in that order.
        let parked = try await DeadLetterStore(schema: schema).parked(unit, version: 0, on: connection)
        return parked.first.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.map(\.key)
    }

    /// The longest delay between two retries of an aggregate by `dueAggregates`.
    public static let longestDelay: Duration = .seconds(3600)

    /// `unit`'s parked aggregates due for the daemon's retry, in the order they were parked: those
    /// whose latest failure (else parking) lies at least `base` × 2^(attempts − 1) back, taking
    /// the most attempts of any of its letters (a retry may fail on a later letter than the
    /// first), at most an hour, by the server's clock.
    public static func dueAggregates(unit: String, base: Duration, schema: Schema, on connection: some PostgresQuerying) async throws
        -> [AggregateKey]
    {
        let seconds = Double(base.components.seconds) + Double(base.components.attoseconds) / 1e18
        return try await connection.query(
            """
            SELECT aggregate_type, aggregate_id FROM (
                SELECT aggregate_type, aggregate_id, min(global_position) AS first, max(attempts) AS attempts,
                    max(coalesce(last_failed_at, failed_at)) AS failed
                FROM \(schema.deadLettersTable.quoted)
                WHERE consumer_name = $1 AND status = 'parked' AND aggregate_type IS NOT NULL AND aggregate_id IS NOT NULL
                GROUP BY aggregate_type, aggregate_id) AS parked
            WHERE now() >= failed + make_interval(secs => least($2::float8 * power(2, least(greatest(attempts - 1, 0), 40)), $3::float8))
            ORDER BY first
            """, [unit, seconds, Double(Self.longestDelay.components.seconds)]
        ).map { AggregateKey(type: try $0.decode(String.self, at: 0), id: try $0.decode(String.self, at: 1)) }
    }

    /// Applies the events at `positions` under a savepoint in `tx` (the unit locked): nil when
    /// they all applied; else rolls them back, records the failure on the failing letter and
    /// returns it.
    static func attempt(_ positions: [Int64], unit: String, events: LetterEvents, in tx: Transaction) async throws -> Failure? {
        try await tx.query("SAVEPOINT projectionist_retry")
        let failure: HandlerError
        do {
            let found = try await events.events(at: positions, on: tx)
            if let missing = positions.first(where: { position in !found.contains { $0.globalPosition == position } }) {
                try await tx.query("ROLLBACK TO SAVEPOINT projectionist_retry")
                return try await self.record(
                    unit: unit, position: missing, error: "the event at position \(missing) is no longer in \(events.schema.eventsTable)",
                    events: events, in: tx)
            }
            try await events.apply(found, eachChecked: true, in: tx)
            try await tx.query("RELEASE SAVEPOINT projectionist_retry")
            return nil
        } catch {
            guard let reported = events.reported(error) else { throw error }
            failure = reported
        }
        try await tx.query("ROLLBACK TO SAVEPOINT projectionist_retry")
        return try await self.record(unit: unit, position: failure.position, error: failure.underlying, events: events, in: tx)
    }

    /// The failing letter's bookkeeping: one more attempt, its error, now.
    static func record(unit: String, position: Int64, error: String, events: LetterEvents, in tx: Transaction) async throws -> Failure {
        let attempts = try await tx.query(
            """
            UPDATE \(events.schema.deadLettersTable.quoted) SET attempts = attempts + 1, error = $3, last_failed_at = now()
            WHERE consumer_name = $1 AND global_position = $2 RETURNING attempts
            """, [unit, position, error]
        ).first?.decode(Int32.self, at: 0)
        return Failure(position: position, error: error, attempts: attempts.map(Int.init) ?? 0)
    }

    /// `positions` in order, each once (a position may have been dead-lettered twice).
    static func distinct(_ positions: [Int64]) -> [Int64] {
        var seen = Set<Int64>()
        return positions.sorted().filter { seen.insert($0).inserted }
    }
}
