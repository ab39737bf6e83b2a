import EventStore
import Postgres

extension PersistedEvent {
    /// This event with the encrypted fields of its payload decrypted (fields whose keys were
    /// destroyed become `null`), for Swift projections that decrypt on demand: the
    /// self-describing `$encrypted` fields, and those `mappings` locate. Keys are read on
    /// `database`, typically the handler's transaction. An event without encrypted fields comes
    /// back unchanged.
    public func decrypted(
        with decryptor: PayloadDecryptor, mappings: [EncryptedFieldMapping] = [], on database: some PostgresQuerying
    ) async throws -> PersistedEvent {
        if mappings.isEmpty, !PayloadDecryptor.mayContainEncryptedFields(self.payload) { return self }
        return try await decryptor.results([self], mappings: mappings, on: database)[0].get().event
    }
}

extension PayloadDecryptor {
    /// One event's decryption: the event with its payload decrypted, and the fields nulled.
    public typealias EventResult = Result<(event: PersistedEvent, nulledFields: [NulledField]), EncryptionError>

    /// What decrypting a batch of events found: each event's result, and the data keys that
    /// were in the table (a caller can later ask whether they still are: `KeyStore.keys`).
    public struct BatchDecryption: Sendable {
        public var results: [EventResult]
        public var foundKeys: Set<KeyReference>
    }

    /// Decrypts the payloads of a batch of events with one key query, each on its own: the
    /// events in order, each decrypted or with the reason it could not be (see `results`).
    public func results(_ events: [PersistedEvent], on database: some PostgresQuerying) async throws -> [EventResult] {
        try await self.decrypt(events, mappings: [], on: database).results
    }

    /// `results(_:on:)` after decrypting the fields `mappings` locate (one key query for them
    /// all): a mapped field whose keys were destroyed becomes `null`. The payload of an event
    /// with mapped fields is written back by `JSONSerialization` (keys sorted), so its bytes
    /// change even where its meaning does not.
    public func results(_ events: [PersistedEvent], mappings: [EncryptedFieldMapping], on database: some PostgresQuerying) async throws
        -> [EventResult]
    {
        try await self.decrypt(events, mappings: mappings, on: database).results
    }

    /// `results(_:mappings:on:)`, with the data keys found.
    public func decrypt(_ events: [PersistedEvent], mappings: [EncryptedFieldMapping], on database: some PostgresQuerying) async throws
        -> BatchDecryption
    {
        guard !mappings.isEmpty else { return try await self.decryptSelfDescribing(events, on: database) }
        let located = events.map { event in
            Result { () throws(EncryptionError) in try MappedPayload(payload: event.payload, aggregateID: event.aggregateID, mappings: mappings) }
        }
        let references = Set(located.flatMap { (try? $0.get())?.fields.map(\.key) ?? [] })
        let keys = try await self.dataKeys(references, on: database)
        var mapped = events
        var failures: [Int: EncryptionError] = [:]
        var nulled: [Int: [NulledField]] = [:]
        for (index, payload) in located.enumerated() {
            do {
                let payload = try payload.get()
                guard !payload.fields.isEmpty else { continue }
                (mapped[index].payload, nulled[index]) = try payload.decrypt(with: keys)
            } catch {
                failures[index] = error
            }
        }
        var decryption = try await self.decryptSelfDescribing(mapped, on: database)
        for (index, error) in failures { decryption.results[index] = .failure(error) }
        for (index, fields) in nulled where !fields.isEmpty {
            decryption.results[index] = decryption.results[index].map { ($0.event, fields + $0.nulledFields) }
        }
        decryption.foundKeys.formUnion(Self.found(keys))
        return decryption
    }

    private func decryptSelfDescribing(_ events: [PersistedEvent], on database: some PostgresQuerying) async throws -> BatchDecryption {
        let indices = events.indices.filter { Self.mayContainEncryptedFields(events[$0].payload) }
        var outcomes = events.map { EventResult.success(($0, [])) }
        guard !indices.isEmpty else { return BatchDecryption(results: outcomes, foundKeys: []) }
        let (decrypted, found) = try await self.resultsAndKeys(indices.map { events[$0].payload }, on: database)
        for (index, result) in zip(indices, decrypted) {
            outcomes[index] = result.map { payload in
                var event = events[index]
                event.payload = payload.bytes
                return (event, payload.nulledFields)
            }
        }
        return BatchDecryption(results: outcomes, foundKeys: found)
    }
}
