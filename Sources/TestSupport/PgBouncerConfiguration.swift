import Glibc

/// The `pgbouncer.ini` and `userlist.txt` of a `PgBouncer` fixture.
struct PgBouncerConfiguration {
    /// The test server as pgbouncer reaches it: libpq keywords `host` (the socket directory),
    /// `port` and `user` of `PROJECTIONIST_TEST_DATABASE`.
    var serverHost: String
    var serverPort: String
    var user: String
    var database: String
    var listenPort: Int
    var poolMode: String
    var defaultPoolSize: Int
    var directory: String

    /// Takes host, port and user from a test database's keyword string.
    /// - Throws: `PgBouncerError` naming the missing keyword.
    init(database: TestDatabase, listenPort: Int, poolMode: String, defaultPoolSize: Int, directory: String) throws {
        let keywords = try Self.keywords(in: database.connectionString)
        func require(_ key: String) throws -> String {
            guard let value = keywords[key], !value.isEmpty else {
                throw PgBouncerError(
                    "PROJECTIONIST_TEST_DATABASE has no \(key)=: run the tests with scripts/test, which sets host, port and user")
            }
            return value
        }
        self.serverHost = try require("host")
        self.serverPort = try require("port")
        self.user = try require("user")
        self.database = database.name
        self.listenPort = listenPort
        self.poolMode = poolMode
        self.defaultPoolSize = defaultPoolSize
        self.directory = directory
    }

    var iniPath: String { "\(self.directory)/pgbouncer.ini" }
    var userListPath: String { "\(self.directory)/userlist.txt" }

    /// TCP on 127.0.0.1 only (no unix socket); `trust` still needs the user in the auth file.
    /// Startup parameters are not ignored: libpq sends only user, database and
    /// application_name, which pgbouncer 1.18 tracks per client.
    var ini: String {
        """
        [databases]
        \(self.database) = host=\(self.serverHost) port=\(self.serverPort) dbname=\(self.database) user=\(self.user)

        [pgbouncer]
        listen_addr = 127.0.0.1
        listen_port = \(self.listenPort)
        unix_socket_dir =
        auth_type = trust
        auth_file = \(self.userListPath)
        admin_users = \(self.user)
        pool_mode = \(self.poolMode)
        default_pool_size = \(self.defaultPoolSize)
        max_client_conn = 200
        pidfile =

        """
    }

    var userList: String { "\"\(self.user)\" \"\"\n" }

    /// The keyword string a client uses to reach `database` through pgbouncer.
    var clientConnectionString: String {
        "host=127.0.0.1 port=\(self.listenPort) dbname=\(self.database) user=\(self.user)"
    }

    /// `key=value` pairs of a libpq keyword string (values bare or single-quoted with `\` escapes;
    /// a later key wins, as in libpq).
    static func keywords(in string: String) throws -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(string)
        while true {
            rest = rest.drop { $0 == " " }
            guard !rest.isEmpty else { return result }
            let key = rest.prefix { $0 != "=" && $0 != " " }
            rest = rest.dropFirst(key.count).drop { $0 == " " }
            guard rest.first == "=" else { throw PgBouncerError("cannot read the keyword string near \"\(key)\"") }
            rest = rest.dropFirst().drop { $0 == " " }
            var value = ""
            if rest.first == "'" {
                rest = rest.dropFirst()
                while let character = rest.first, character != "'" {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first {
                        value.append(escaped)
                        rest = rest.dropFirst()
                    } else {
                        value.append(character)
                    }
                }
                rest = rest.dropFirst()
            } else {
                value = String(rest.prefix { $0 != " " })
                rest = rest.dropFirst(value.count)
            }
            result[String(key)] = value
        }
    }

    /// A TCP port on 127.0.0.1 that nobody listens on right now (bound to port 0, then released).
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw PgBouncerError("cannot open a socket to find a free port (errno \(errno))") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let found = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard found else { throw PgBouncerError("cannot bind 127.0.0.1:0 to find a free port (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A `PgBouncer` fixture could not start; the message says why and what to do.
public struct PgBouncerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
