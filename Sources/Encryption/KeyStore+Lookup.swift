import Postgres

extension KeyStore {
    /// The subject's active key (highest version not revoked), or nil when it has none.
    public func activeKey(scope: String, scopeID: String, on database: some PostgresQuerying) async throws -> StoredKey? {
        let rows = try await database.query(
            """
            SELECT \(Self.columns) FROM \(self.table.quoted)
            WHERE scope = $1 AND scope_id = $2 AND revoked_at IS NULL
            ORDER BY key_version DESC LIMIT 1
            """, [scope, scopeID])
        return try rows.first.map(StoredKey.init(row:))
    }

    /// One version of the subject's key (revoked or not), or nil when it is not there
    /// (destroyed, or never created).
    public func key(_ reference: KeyReference, on database: some PostgresQuerying) async throws -> StoredKey? {
        let rows = try await database.query(
            "SELECT \(Self.columns) FROM \(self.table.quoted) WHERE scope = $1 AND scope_id = $2 AND key_version = $3",
            [reference.scope, reference.scopeID, Int32(clamping: reference.version)])
        return try rows.first.map(StoredKey.init(row:))
    }

    /// Several keys in one query; references that are not there are missing from the result.
    public func keys(_ references: Set<KeyReference>, on database: some PostgresQuerying) async throws
        -> [KeyReference: StoredKey]
    {
        guard !references.isEmpty else { return [:] }
        let list = Array(references)
        let rows = try await database.query(
            """
            SELECT k.scope, k.scope_id, k.key_version, k.encrypted_key, k.system_key_id, k.created_at, k.revoked_at
            FROM \(self.table.quoted) k
            JOIN unnest($1::text[], $2::text[], $3::text[]::int[]) AS r(scope, scope_id, key_version)
              ON k.scope = r.scope AND k.scope_id = r.scope_id AND k.key_version = r.key_version
            """,
            [
                PostgresTextArray(list.map(\.scope)), PostgresTextArray(list.map(\.scopeID)),
                PostgresTextArray(list.map { String($0.version) }),
            ])
        var found: [KeyReference: StoredKey] = [:]
        for row in rows {
            let key = try StoredKey(row: row)
            found[key.reference] = key
        }
        return found
    }
}
