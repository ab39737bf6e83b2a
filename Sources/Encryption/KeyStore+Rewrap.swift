import Postgres

/// What a re-wrap did or, for a dry run, would do (eventsalsa's `RewrapSystemKeysResult`).
public struct RewrapResult: Sendable, Hashable {
    /// Data keys selected for re-wrapping (a dry run: the number that would be).
    public var matchedRows = 0
    /// Data keys now wrapped under the active system key.
    public var rewrappedRows = 0
    /// Selected data keys another writer changed first.
    public var skippedRows = 0
    /// Data keys still not under the active system key afterwards (e.g. locked by others).
    public var remainingRows = 0
    /// Batch transactions committed.
    public var batches = 0

    public init() {}
}

/// Which stored data keys a re-wrap moves to the keyring's active system key, and how.
public struct RewrapOptions: Sendable, Hashable {
    /// Only data keys under this system key; nil: every one not under the active key.
    public var fromSystemKeyID: String?
    /// Data keys per batch transaction (eventsalsa's default, 100).
    public var batchSize: Int
    /// Only count what would be re-wrapped; change nothing.
    public var dryRun: Bool

    public init(fromSystemKeyID: String? = nil, batchSize: Int = 100, dryRun: Bool = false) {
        self.fromSystemKeyID = fromSystemKeyID
        self.batchSize = batchSize
        self.dryRun = dryRun
    }
}

extension KeyStore {
    /// Re-wraps every stored data key that is not under the keyring's active system key (or only
    /// those under `options.fromSystemKeyID`), in batch transactions of its own on `connection`,
    /// until none is left. Only `encrypted_key` and `system_key_id` change: versions, and the
    /// ciphertexts in events, stay as they are. Afterwards the old system key can leave the
    /// keyring. The keyring must hold every system key the selected data keys are under.
    public func rewrap(_ options: RewrapOptions = RewrapOptions(), on connection: PostgresConnection) async throws
        -> RewrapResult
    {
        try self.validate(options)
        var total = RewrapResult()
        if options.dryRun {
            total.matchedRows = try await self.countToRewrap(from: options.fromSystemKeyID, on: connection)
            total.remainingRows = total.matchedRows
            return total
        }
        while true {
            let batch = try await connection.transaction { transaction in
                try await self.rewrapBatch(from: options.fromSystemKeyID, batchSize: options.batchSize, on: transaction)
            }
            guard batch.matchedRows > 0 else { break }
            total.matchedRows += batch.matchedRows
            total.rewrappedRows += batch.rewrappedRows
            total.skippedRows += batch.skippedRows
            total.batches += 1
            if batch.rewrappedRows == 0 { break }  // nothing moved: do not spin
        }
        total.remainingRows = try await self.countToRewrap(from: options.fromSystemKeyID, on: connection)
        return total
    }

    /// One batch inside the caller's transaction: locks up to `batchSize` data keys not under the
    /// active system key (skipping rows other transactions hold), re-wraps and updates them.
    public func rewrapBatch(from systemKeyID: String? = nil, batchSize: Int = 100, on transaction: some PostgresQuerying)
        async throws -> RewrapResult
    {
        try self.validate(RewrapOptions(fromSystemKeyID: systemKeyID, batchSize: batchSize))
        let rows = try await transaction.query(
            """
            SELECT \(Self.columns) FROM \(self.table.quoted)
            WHERE system_key_id <> $1 AND ($2::text IS NULL OR system_key_id = $2::text)
            ORDER BY scope, scope_id, key_version
            LIMIT $3
            FOR UPDATE SKIP LOCKED
            """, [self.keyring.activeKeyID, systemKeyID, Int64(batchSize)])
        var result = RewrapResult()
        result.matchedRows = rows.count
        for row in rows {
            let stored = try StoredKey(row: row)
            let rewrapped = try Envelope.wrap(self.unwrap(stored), under: self.keyring.activeKey)
            let update = try await transaction.query(
                """
                UPDATE \(self.table.quoted) SET encrypted_key = $1, system_key_id = $2
                WHERE scope = $3 AND scope_id = $4 AND key_version = $5 AND system_key_id = $6
                """,
                [
                    rewrapped, self.keyring.activeKeyID, stored.reference.scope, stored.reference.scopeID,
                    Int32(clamping: stored.reference.version), stored.systemKeyID,
                ])
            if update.affectedRows == 0 { result.skippedRows += 1 } else { result.rewrappedRows += 1 }
        }
        result.batches = rows.isEmpty ? 0 : 1
        return result
    }

    /// The number of stored data keys not under the active system key (or under `systemKeyID`).
    public func countToRewrap(from systemKeyID: String? = nil, on database: some PostgresQuerying) async throws -> Int {
        let rows = try await database.query(
            """
            SELECT count(*) FROM \(self.table.quoted)
            WHERE system_key_id <> $1 AND ($2::text IS NULL OR system_key_id = $2::text)
            """, [self.keyring.activeKeyID, systemKeyID])
        return try rows[0].decode(Int.self, at: 0)
    }

    private func validate(_ options: RewrapOptions) throws {
        guard options.batchSize >= 1 else {
            throw EncryptionError(
                .invalidArgument, "rewrap batch size \(options.batchSize) is below 1: use a positive size, e.g. 100")
        }
        if let from = options.fromSystemKeyID, from == self.keyring.activeKeyID {
            throw EncryptionError(
                .invalidArgument,
                "rewrap source system key '\(from)' is the active one: make the new key active, then re-wrap from the old one",
                systemKeyID: from)
        }
    }
}
