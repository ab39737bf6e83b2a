import Postgres

/// How many other sessions of the connection's database run a statement whose text matches
/// `pattern` (SQL `LIKE`) right now: a statement seen running on the server, not just sent.
public func activeStatements(like pattern: String, on connection: PostgresConnection) async throws -> Int64 {
    try await connection.query(
        """
        SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()
        """, [pattern])[0].decode(Int64.self, at: 0)
}
