import Encryption
import EventStore
import Postgres
import Synchronization

/// One read of the events table for a projection: the positions seen and the in-scope events.
struct Batch: Sendable {
    /// The checkpoint it was read after.
    var after: Int64 = 0
    var positions: [Int64] = []
    var events: [PersistedEvent] = []
    /// The read hit its LIMIT: more may be visible right away.
    var full = false
    /// Per event, its statements (read-ahead batches of a `StatementProjection` only).
    var statements: [Result<[ProjectionStatement], HandlerError>]?
    /// Events whose payload could not be decrypted (a projection that decrypts), by position:
    /// their handler fails with this error, the others apply.
    var undecryptable: [Int64: EncryptionError] = [:]
    /// The data keys its decryption found in the table: a batch read ahead, under another
    /// snapshot, checks in the transaction that applies it that they are all still there.
    var keys: Set<KeyReference> = []
}

/// Reads a projection's next batch: rows out of scope come back as a position only (no payload).
///
/// A scoped projection scans as many positions as the last batch's in-scope share suggests for
/// `batchSize` events (up to `scopedScanFactor` × `batchSize`), so a narrow scope moves through
/// the log in few transactions; it applies at most `batchSize` events: the batch ends just
/// before the first in-scope event it leaves out.
struct BatchReader: Sendable {
    let events: QualifiedName
    let layout: EventLayout
    let aggregateTypes: [String]?
    let eventTypes: [String]?
    let partition: WorkUnit.Partition?
    let batchSize: Int
    let scopedScanFactor: Int
    /// Set for a projection that decrypts payloads.
    let decryptor: PayloadDecryptor?
    /// The projection's mapped encrypted fields (besides the self-describing ones).
    let mappings: [EncryptedFieldMapping]
    /// Events whose payload did not decrypt, for the failure path.
    let undecryptable = UndecryptableEvents()
    /// The same scope, tested in Swift on the shared reader's rows.
    let scope: ReadScope

    init(unit: WorkUnit, options: RuntimeOptions) {
        self.events = options.schema.eventsTable
        self.layout = options.schema.layout
        self.aggregateTypes = unit.projection.aggregateTypes
        self.eventTypes = unit.projection.eventTypes
        self.partition = unit.partition
        self.batchSize = options.batchSize
        self.scopedScanFactor = options.scopedScanFactor
        self.decryptor = unit.projection.decryptsPayloads ? options.decryptor : nil
        self.mappings = unit.projection.encryptedFieldMappings
        self.scope = ReadScope(aggregateTypes: self.aggregateTypes, eventTypes: self.eventTypes, partition: self.partition)
    }

    var scoped: Bool { self.aggregateTypes != nil || self.eventTypes != nil || self.partition != nil }

    /// - Parameter events: the most events to apply (`batchSize`, fewer while transactions keep failing).
    func read(after checkpoint: Int64, scan: Int, limit events: Int? = nil, on database: some PostgresQuerying) async throws -> Batch {
        var batch = try await self.readRows(after: checkpoint, scan: scan, limit: events, on: database)
        if let decryptor = self.decryptor { try await self.decrypt(&batch, with: decryptor, on: database) }
        return batch
    }

    /// Decrypts the batch's payloads with one key query on the connection that read it (in the
    /// batch's transaction, or the read-ahead's snapshot): a key destroyed before that snapshot is
    /// never used. A payload that fails is left as it was and recorded in `undecryptable`.
    func decrypt(_ batch: inout Batch, with decryptor: PayloadDecryptor, on database: some PostgresQuerying) async throws {
        let decryption = try await decryptor.decrypt(batch.events, mappings: self.mappings, on: database)
        for (index, result) in decryption.results.enumerated() {
            switch result {
            case .success(let decrypted): batch.events[index] = decrypted.event
            case .failure(let error): batch.undecryptable[batch.events[index].globalPosition] = error
            }
        }
        batch.keys = decryption.foundKeys
        self.undecryptable.record(batch)
    }

    /// A batch read ahead, fit to apply in `database`'s transaction: when a data key it was
    /// decrypted with has been destroyed since (`keys destroy` committed after the read-ahead's
    /// snapshot), its events are decrypted again from the stored payloads, so that the destroyed
    /// subject's fields are `null` (and statements built ahead are dropped, to be built anew).
    func recheck(_ batch: Batch, on database: some PostgresQuerying) async throws -> Batch {
        guard let decryptor = self.decryptor, !batch.keys.isEmpty else { return batch }
        let present = try await decryptor.keyStore.keys(batch.keys, on: database)
        guard present.count < batch.keys.count else { return batch }
        var fresh = batch
        fresh.statements = nil
        fresh.undecryptable = [:]
        fresh.keys = []
        fresh.events = try await self.storedEvents(batch.events, on: database)
        try await self.decrypt(&fresh, with: decryptor, on: database)
        return fresh
    }

    /// `events` decrypted again on `database` from their stored payloads, each on its own, for
    /// the failure path (isolation, retry): what an earlier read decrypted is never applied in a
    /// later transaction, where the keys may have been destroyed meanwhile. Without decryption
    /// the events come back as they are.
    func decryptAgain(_ events: [PersistedEvent], on database: some PostgresQuerying) async throws -> [Result<PersistedEvent, EncryptionError>] {
        guard let decryptor = self.decryptor, !events.isEmpty else { return events.map { .success($0) } }
        let stored = try await self.storedEvents(events, on: database)
        let decryption = try await decryptor.decrypt(stored, mappings: self.mappings, on: database)
        return decryption.results.map { $0.map(\.event) }
    }

    /// `events` with the payloads the events table holds (an earlier read may have decrypted them).
    private func storedEvents(_ events: [PersistedEvent], on database: some PostgresQuerying) async throws -> [PersistedEvent] {
        let rows = try await database.query(
            "SELECT global_position, payload FROM \(self.events.quoted) WHERE global_position = ANY($1::text[]::bigint[])",
            [PostgresTextArray(events.map { String($0.globalPosition) })])
        var payloads: [Int64: [UInt8]] = [:]
        for row in rows { payloads[try row.decode(Int64.self, at: 0)] = try row.decode([UInt8].self, at: 1) }
        return try events.map { event in
            guard let payload = payloads[event.globalPosition] else {
                throw PostgresError(
                    code: .usage, message: "the event at position \(event.globalPosition) is no longer in \(self.events): it cannot be decrypted again")
            }
            var stored = event
            stored.payload = payload
            return stored
        }
    }

    /// Reads the rows after `checkpoint`. Each statement also bounds the positions (`<= after +
    /// span`), so that its plan is an index range scan whatever the table's statistics say (an
    /// unbounded `> $1 ORDER BY ... LIMIT` on a table not analyzed yet is planned as a scan and
    /// sort of the whole table, for every batch). A stretch without visible rows goes on past the
    /// bound, four times as far each time, until rows appear or the head is passed.
    private func readRows(after checkpoint: Int64, scan: Int, limit events: Int?, on database: some PostgresQuerying) async throws -> Batch {
        let eventLimit = min(events ?? self.batchSize, self.batchSize)
        let limit = self.scoped ? scan : eventLimit
        var after = checkpoint
        var span = Int64(max(1, limit)) * 2
        while true {
            let upper = after.addingReportingOverflow(span).overflow ? Int64.max : after + span
            let result = try await database.query(self.sql, self.parameters(after: after, upper: upper, limit: limit))
            if result.count < limit {
                let head = try await database.query("SELECT coalesce(max(global_position), 0) FROM \(self.events.quoted)", [])[0]
                    .decode(Int64.self, at: 0)
                if head > upper, result.isEmpty {
                    after = upper
                    span = span > Int64.max / 4 ? Int64.max : span * 4
                    continue
                }
                return try self.batch(after: checkpoint, from: result, eventLimit: eventLimit, more: head > upper)
            }
            return try self.batch(after: checkpoint, from: result, eventLimit: eventLimit, more: true)
        }
    }

    /// The read's SQL: `$1` after, `$2` the limit, `$3` the upper bound, then the scope's parameters.
    private var sql: String {
        let events = self.events.quoted
        let columns = PersistedEvent.columns(self.layout)
        guard self.scoped else {
            return """
                SELECT global_position, true, \(columns.joined(separator: ", "))
                FROM \(events) WHERE global_position > $1 AND global_position <= $3 ORDER BY global_position LIMIT $2
                """
        }
        var conditions: [String] = []
        var next = 4
        if self.aggregateTypes != nil {
            conditions.append("\(self.layout.typeColumn) = ANY($\(next)::text[])")
            next += 1
        }
        if self.eventTypes != nil {
            conditions.append("event_type = ANY($\(next)::text[])")
            next += 1
        }
        if self.partition != nil {
            conditions.append("\(WorkUnit.partitionExpression(count: "$\(next)", layout: self.layout)) = $\(next + 1)")
        }
        // The scope test runs once per row (the LIMIT keeps the subquery from being flattened),
        // and out-of-scope rows carry no data.
        let guarded = columns.map { "CASE WHEN in_scope THEN \($0) END" }
        return """
            SELECT global_position, in_scope, \(guarded.joined(separator: ", "))
            FROM (SELECT *, (\(conditions.joined(separator: " AND "))) AS in_scope FROM \(events)
                  WHERE global_position > $1 AND global_position <= $3 ORDER BY global_position LIMIT $2) AS page
            """
    }

    private func parameters(after: Int64, upper: Int64, limit: Int) -> [any PostgresEncodable] {
        var parameters: [any PostgresEncodable] = [after, Int64(limit), upper]
        if let types = self.aggregateTypes { parameters.append(PostgresTextArray(types)) }
        if let types = self.eventTypes { parameters.append(PostgresTextArray(types)) }
        if let partition = self.partition {
            parameters.append(Int32(partition.count))
            parameters.append(Int32(partition.index))
        }
        return parameters
    }

    /// The batch a read's rows make: every position, the in-scope events up to `eventLimit`.
    /// `more`: rows may be visible past the last one read.
    private func batch(after checkpoint: Int64, from result: QueryResult, eventLimit: Int, more: Bool) throws -> Batch {
        var batch = Batch(after: checkpoint)
        batch.positions.reserveCapacity(result.count)
        for row in result {
            let position = try row.decode(Int64.self, at: 0)
            guard try row.decode(Bool.self, at: 1) else {
                batch.positions.append(position)
                continue
            }
            if batch.events.count == eventLimit {  // the next batch starts here
                batch.full = true
                return batch
            }
            batch.positions.append(position)
            batch.events.append(try PersistedEvent(row: row, from: 2, globalPosition: position))
        }
        batch.full = more
        return batch
    }

    /// How many positions the next scoped read should scan: enough for `batchSize` in-scope
    /// events at the share just seen, within batchSize...scopedScanFactor × batchSize.
    func nextScan(scanned: Int, inScope: Int) -> Int {
        let size = self.batchSize
        guard scanned > 0 else { return size }
        let wanted = inScope == 0 ? size * self.scopedScanFactor : size * scanned / inScope + size / 10
        return min(max(wanted, size), size * self.scopedScanFactor)
    }
}
