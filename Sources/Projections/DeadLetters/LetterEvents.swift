import Encryption
import EventStore
import Postgres

/// The events that operator commands apply again (dead letters, one aggregate's history), read
/// from the events table and decrypted like the daemon decrypts them, in the transaction that
/// applies them.
struct LetterEvents: Sendable {
    let schema: Schema
    let projection: any Projection
    let decryptor: PayloadDecryptor?

    /// A projection that decrypts payloads was given no decryptor.
    struct NoDecryptor: Error, CustomStringConvertible {
        var projection: String
        var description: String {
            "projection '\(self.projection)' decrypts payloads, but no decryptor was given (configure the encryption section)"
        }
    }

    init(schema: Schema, projection: any Projection, decryptor: PayloadDecryptor?) throws {
        if projection.decryptsPayloads, decryptor == nil { throw NoDecryptor(projection: projection.name) }
        self.schema = schema
        self.projection = projection
        self.decryptor = projection.decryptsPayloads ? decryptor : nil
    }

    /// The events at `positions`, in position order (a position the table no longer holds is
    /// left out).
    func events(at positions: [Int64], on database: some PostgresQuerying) async throws -> [PersistedEvent] {
        guard !positions.isEmpty else { return [] }
        return try await database.query(
            """
            SELECT global_position, \(PersistedEvent.columns(self.schema.layout).joined(separator: ", ")) FROM \(self.schema.eventsTable.quoted)
            WHERE global_position = ANY($1::text[]::bigint[]) ORDER BY global_position
            """, [PostgresTextArray(positions.map(String.init))]
        ).map { try PersistedEvent(row: $0) }
    }

    /// Each event decrypted (unchanged without decryption), or why it could not be.
    func decrypted(_ events: [PersistedEvent], on database: some PostgresQuerying) async throws -> [Result<PersistedEvent, EncryptionError>] {
        guard let decryptor = self.decryptor, !events.isEmpty else { return events.map { .success($0) } }
        return try await decryptor.decrypt(events, mappings: self.projection.encryptedFieldMappings, on: database).results.map { $0.map(\.event) }
    }

    /// Applies `events` in order in `tx`, each decrypted. `eachChecked`: one at a time, each
    /// event's deferred constraints checked before the next (so that a failure names its event);
    /// else in one batch, checked at its end.
    /// - Throws: `HandlerError` naming the event whose handler (or decryption) failed, or an
    ///   error that is no event's (a lost connection, a deadlock: `reported` returns nil for it).
    func apply(_ events: [PersistedEvent], eachChecked: Bool, in tx: Transaction) async throws {
        guard !events.isEmpty else { return }
        var ready: [PersistedEvent] = []
        var undecryptable: HandlerError?
        for (event, decryption) in zip(events, try await self.decrypted(events, on: tx)) {
            guard case .success(let decrypted) = decryption else {
                if case .failure(let error) = decryption { undecryptable = HandlerError(event: event, error: error) }
                break
            }
            ready.append(decrypted)
        }
        if eachChecked {
            for event in ready {
                do {
                    try await self.projection.handle(event, in: tx)
                    try await tx.execute(script: ProjectionRunner.checkDeferred)
                } catch {
                    throw error as? HandlerError ?? HandlerError(event: event, error: error)
                }
            }
        } else if !ready.isEmpty {
            do {
                try await self.projection.handle(batch: ready, in: tx)
                try await tx.execute(script: ProjectionRunner.checkDeferred)
            } catch {
                throw error as? HandlerError ?? HandlerError(event: ready[ready.count - 1], error: error)
            }
        }
        if let undecryptable { throw undecryptable }
    }

    /// The error as it is stored: nil when it is no handler's failure (transient, cancelled),
    /// else redacted for a projection that `redactsErrors`.
    func reported(_ error: any Error) -> HandlerError? {
        guard let handler = error as? HandlerError, case .handler = RunnerFailure.classify(handler, cancelled: Task.isCancelled) else {
            return nil
        }
        return self.projection.redactsErrors ? handler.redacted() : handler
    }
}
