@testable import ProjectionistApp
import Testing

/// Which failures to connect end a command at once (exit 78) and which are waited out (69).
@Suite struct ConnectionRefusalTests {
    @Test(
        "an unknown database, failed authentication and a connection string libpq refuses are the configuration's fault",
        arguments: [
            "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  database \"nope\" does not exist",
            "connection to server at \"db\" (10.0.0.5), port 5432 failed: FATAL:  password authentication failed for user \"app\"",
            "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  role \"nobody\" does not exist",
            "connection to server at \"db\", port 5432 failed: FATAL:  no pg_hba.conf entry for host \"10.0.0.9\", user \"app\", database \"app\", no encryption",
            "connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  Peer authentication failed for user \"app\"",
            "connection to server at \"db\", port 5432 failed: fe_sendauth: no password supplied",
            "missing \"=\" after \"dbname\" in connection info string",
            "invalid integer value \"notaport\" for connection option \"port\"",
            "invalid URI query parameter: \"colour\"",
        ])
    func permanent(message: String) {
        #expect(ConnectionRefusal.reason(for: message) != nil)
    }

    @Test(
        "a server that is down, starting, shutting down or full is worth waiting for",
        arguments: [
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused Is the server running on that host and accepting TCP/IP connections?",
            "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  the database system is starting up",
            "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  the database system is shutting down",
            "connection to server at \"db\", port 5432 failed: FATAL:  sorry, too many clients already",
            "connection to server at \"db\", port 5432 failed: timeout expired",
            "could not translate host name \"db\" to address: Temporary failure in name resolution",
        ])
    func transient(message: String) {
        #expect(ConnectionRefusal.reason(for: message) == nil)
    }
}
