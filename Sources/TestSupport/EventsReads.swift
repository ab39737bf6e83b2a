import Postgres

/// Rows read from the `events` table so far (sequential and index fetches), as the server's
/// statistics count them: what the shared reader's tests and the benchmark compare to the log.
/// A backend's counters reach the statistics when its transaction ends or it goes idle.
public func eventsRowsRead(on connection: PostgresConnection) async throws -> Int64 {
    try await connection.query("SELECT pg_stat_clear_snapshot()", [])
    return try await connection.query(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE relname = 'events'", []
    )[0].decode(Int64.self, at: 0)
}
