import Postgres

extension KeyStore {
    /// The DDL of the key table: eventsalsa/encryption's `001_encryption_keys.sql` (columns,
    /// checks, indexes) for `table`, idempotent, with `CREATE SCHEMA IF NOT EXISTS` first.
    public static func migrationSQL(table: QualifiedName = KeyStore.defaultTable) -> String {
        let name = table.quoted
        func index(_ suffix: String) -> String { QualifiedName.quoteIdentifier("idx_\(table.name)_\(suffix)") }
        var parts: [String] = [
            """
            -- Encryption keys: data keys wrapped under system keys (eventsalsa/encryption layout).
            -- Safe to apply more than once.
            """
        ]
        if let schema = table.schema { parts.append("CREATE SCHEMA IF NOT EXISTS \(QualifiedName.quoteIdentifier(schema));") }
        parts.append(
            """
            CREATE TABLE IF NOT EXISTS \(name) (
                scope TEXT NOT NULL,
                scope_id TEXT NOT NULL,
                key_version INT NOT NULL,
                encrypted_key BYTEA NOT NULL,
                system_key_id TEXT NOT NULL DEFAULT 'default',
                created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                revoked_at TIMESTAMPTZ,
                PRIMARY KEY (scope, scope_id, key_version),
                CONSTRAINT scope_not_empty CHECK (scope <> ''),
                CONSTRAINT scope_id_not_empty CHECK (scope_id <> ''),
                CONSTRAINT key_version_positive CHECK (key_version > 0),
                CONSTRAINT encrypted_key_not_empty CHECK (length(encrypted_key) > 0),
                CONSTRAINT system_key_id_not_empty CHECK (system_key_id <> '')
            );

            CREATE INDEX IF NOT EXISTS \(index("active"))
                ON \(name) (scope, scope_id, revoked_at)
                WHERE revoked_at IS NULL;

            CREATE INDEX IF NOT EXISTS \(index("system_key_id"))
                ON \(name) (system_key_id);

            CREATE INDEX IF NOT EXISTS \(index("scope"))
                ON \(name) (scope, scope_id, key_version DESC);
            """)
        return parts.joined(separator: "\n\n") + "\n"
    }
}
