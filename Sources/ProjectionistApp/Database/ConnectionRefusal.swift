/// Which failures to connect are the configuration's fault, so that retrying cannot help: an
/// unknown database (SQLSTATE 3D000), failed authentication (28P01, 28000: a wrong password, an
/// unknown role, no `pg_hba.conf` entry) or a connection string libpq refuses. A pure decision on
/// libpq's message (libpq gives no SQLSTATE for a failed connection); anything else, such as a
/// server that is down, starting or full, is worth waiting for.
enum ConnectionRefusal {
    /// What is wrong, for the operator; nil when the failure may pass.
    static func reason(for message: String) -> String? {
        let text = message.lowercased()
        if text.contains("database \""), text.contains("\" does not exist") { return "the database does not exist (3D000)" }
        if text.contains("password authentication failed") { return "the password was refused (28P01)" }
        if text.contains("role \""), text.contains("\" does not exist") { return "the role does not exist (28000)" }
        if text.contains("no pg_hba.conf entry") { return "the server's pg_hba.conf admits no such connection (28000)" }
        if text.contains("authentication failed for user") { return "authentication failed (28000)" }
        if text.contains("no password supplied") { return "the server wants a password and none was given" }
        for parseError in [
            "invalid connection option", "missing \"=\" after", "unterminated quoted string", "invalid uri", "invalid integer value",
            "invalid port number", "invalid percent-encoded token", "extra key/value separator", "unexpected spaces found",
            "invalid sslmode value", "invalid value for parameter", "invalid connection string",
        ] where text.contains(parseError) {
            return "libpq cannot use the connection string"
        }
        return nil
    }
}
