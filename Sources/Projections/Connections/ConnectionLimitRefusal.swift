import Postgres

/// Whether a failed connect is the server refusing one more connection (SQLSTATE 53300): its
/// `max_connections` reached, a role's or database's `CONNECTION LIMIT`, or the slots reserved for
/// superusers. libpq reports a failed connect without a SQLSTATE, as the server's FATAL message
/// ("sorry, too many clients already", "too many connections for role \"x\"", "too many
/// connections for database \"x\"", "remaining connection slots are reserved ..."), so this reads
/// the message. A pure decision; the pool treats such a refusal as transient.
enum ConnectionLimitRefusal {
    static func isRefusal(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError else { return false }
        if error.sqlState == "53300" { return true }
        return self.isRefusal(message: error.message)
    }

    static func isRefusal(message: String) -> Bool {
        let text = message.lowercased()
        return text.contains("too many clients already") || text.contains("too many connections for role")
            || text.contains("too many connections for database") || text.contains("remaining connection slots are reserved")
    }
}
