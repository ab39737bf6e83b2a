import Encryption
import EventStore
import Postgres

extension DeadLetterRetry {
    /// What retrying the dead letter at one position did.
    public enum PositionOutcome: Sendable, Equatable {
        /// The projection has no dead letter there.
        case nothing
        /// Applied and deleted.
        case applied(DeadLetter)
        /// It failed again: it stays, with one more attempt.
        case failed(DeadLetter, Failure)
        /// Refused, nothing done: a parked letter that is not its aggregate's first (that one is
        /// at `first`); its aggregate's events apply in order, so retry the whole aggregate.
        case notFirst(DeadLetter, first: Int64)
    }

    /// Retries the dead letter at `position` of `projection` (any of its units): a `skipped`
    /// one, or a `parked` one that is the first of its aggregate (the aggregate stays parked at
    /// its next letter, if it has one). In one transaction under the unit's checkpoint row lock.
    /// `connection` must be prepared for the projection (`Projection.prepare`).
    public static func retry(
        projection: any Projection, position: Int64, schema: Schema, decryptor: PayloadDecryptor?, on connection: PostgresConnection
    ) async throws -> PositionOutcome {
        let events = try LetterEvents(schema: schema, projection: projection, decryptor: decryptor)
        let units = WorkUnit.units(of: projection).map(\.name)
        guard let found = try await DeadLetterList.letters(of: units, where: "global_position = $2", [position], schema: schema, on: connection).first
        else { return .nothing }
        return try await connection.transaction { tx -> PositionOutcome in
            _ = try await CheckpointStore(schema: schema).lockForReset(found.unit, in: tx)
            // Read again under the lock: another retry may have applied it meanwhile.
            let letters = try await DeadLetterList.letters(of: [found.unit], where: "global_position = $2", [position], schema: schema, on: tx)
            guard let letter = letters.first else { return .nothing }
            if letter.status == .parked, let aggregate = letter.aggregate {
                let first = try await tx.query(
                    """
                    SELECT min(global_position) FROM \(schema.deadLettersTable.quoted)
                    WHERE consumer_name = $1 AND status = 'parked' AND aggregate_type = $2 AND aggregate_id = $3
                    """, [letter.unit, aggregate.type, aggregate.id])[0].decode(Int64.self, at: 0)
                if first != position { return .notFirst(letter, first: first) }
            }
            if let failure = try await self.attempt([position], unit: letter.unit, events: events, in: tx) {
                var failed = letter
                failed.attempts = failure.attempts
                failed.error = failure.error
                return .failed(failed, failure)
            }
            let store = DeadLetterStore(schema: schema)
            let deleted = try await tx.query(
                "DELETE FROM \(store.table) WHERE consumer_name = $1 AND global_position = $2 RETURNING status", [letter.unit, position]
            ).map { try $0.decode(String.self, at: 0) }
            // Any parked letter gone changes the parked set, whichever letter was picked.
            if deleted.contains(DeadLetterStatus.parked.rawValue) {
                let (bump, parameters) = store.bumpStatement(letter.unit)
                try await tx.query(bump, parameters)
            }
            return .applied(letter)
        }
    }
}
