import EventStore
import Postgres

extension PersistedEvent {
    /// This event with the encrypted fields of its payload decrypted (fields whose keys were
    /// destroyed become `null`), for Swift projections that decrypt on demand. Keys are read on
    /// `database`, typically the handler's transaction. An event without encrypted fields comes
    /// back unchanged, without parsing.
    public func decrypted(with decryptor: PayloadDecryptor, on database: some PostgresQuerying) async throws -> PersistedEvent {
        guard PayloadDecryptor.mayContainEncryptedFields(self.payload) else { return self }
        var event = self
        event.payload = try await decryptor.decrypt(self.payload, on: database).bytes
        return event
    }
}

extension PayloadDecryptor {
    /// Decrypts the payloads of a batch of events with one key query, each on its own: the
    /// events in order, each decrypted or with the reason it could not be (see `results`).
    public func results(_ events: [PersistedEvent], on database: some PostgresQuerying) async throws
        -> [Result<(event: PersistedEvent, nulledFields: [NulledField]), EncryptionError>]
    {
        let indices = events.indices.filter { Self.mayContainEncryptedFields(events[$0].payload) }
        var outcomes = events.map { Result<(event: PersistedEvent, nulledFields: [NulledField]), EncryptionError>.success(($0, [])) }
        guard !indices.isEmpty else { return outcomes }
        let decrypted = try await self.results(indices.map { events[$0].payload }, on: database)
        for (index, result) in zip(indices, decrypted) {
            outcomes[index] = result.map { payload in
                var event = events[index]
                event.payload = payload.bytes
                return (event, payload.nulledFields)
            }
        }
        return outcomes
    }
}
