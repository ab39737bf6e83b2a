import Foundation
import Glibc
import Postgres

/// A PgBouncer of its own in front of one test database, transaction pooling unless told
/// otherwise: for tests that run the daemon through a pooler.
///
/// It runs `/usr/sbin/pgbouncer` (which `scripts/test` installs) as a child process, as the
/// `postgres` user when the tests run as root, with its configuration and log in a temporary
/// directory. `stop()` (or, as a safety net, `deinit`) ends it and removes the directory.
public final class PgBouncer: @unchecked Sendable {
    // `stopped` is guarded by `lock`; everything else is immutable.
    /// The Debian package's binary.
    public static let executable = "/usr/sbin/pgbouncer"

    /// Keyword string reaching the database through pgbouncer (TCP on 127.0.0.1).
    public let connectionString: String
    public let port: Int
    /// Holds `pgbouncer.ini`, `userlist.txt` and `pgbouncer.log` while it runs.
    public let directory: String
    private let process: SpawnedProcess
    private let lock = NSLock()
    private var stopped = false

    private init(connectionString: String, port: Int, directory: String, process: SpawnedProcess) {
        self.connectionString = connectionString
        self.port = port
        self.directory = directory
        self.process = process
    }

    deinit { self.stop() }

    public var pid: Int32 { self.process.pid }

    /// Everything pgbouncer has logged so far.
    public var log: String { (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? "" }

    /// A new client connection through pgbouncer.
    public func connect(applicationName: String = "projectionist-test") async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            ConnectionConfiguration(connectionString: self.connectionString, applicationName: applicationName))
    }

    /// Starts a pgbouncer for `database` and waits until it serves a query.
    /// - Throws: `PgBouncerError` when pgbouncer is missing or does not come up (with its log's tail).
    public static func start(
        for database: TestDatabase, poolMode: String = "transaction", defaultPoolSize: Int = 4
    ) async throws -> PgBouncer {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw PgBouncerError("\(Self.executable) not found: run the tests with scripts/test, which installs pgbouncer")
        }
        var attempt = 1
        while true {  // the free port may be taken before pgbouncer binds it: then try another
            let bouncer = try self.launch(database: database, poolMode: poolMode, defaultPoolSize: defaultPoolSize)
            do {
                // Readiness, not a time bound: a server loaded by the parallel tests took 7 s to answer it.
                try await bouncer.waitUntilReady(timeout: .seconds(30))
                return bouncer
            } catch {
                let portTaken = bouncer.log.contains("Address already in use")
                bouncer.stop()
                if !portTaken || attempt == 3 { throw error }
                attempt += 1
            }
        }
    }

    /// Sends SIGTERM and waits up to 5 s (then SIGKILL) for the process to end; removes the directory.
    public func stop() {
        let first = self.lock.withLock {
            defer { self.stopped = true }
            return !self.stopped
        }
        guard first else { return }
        self.process.terminate(timeout: .seconds(5))
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private var logPath: String { "\(self.directory)/pgbouncer.log" }

    /// The last lines of the log, for error messages.
    private func logTail(lines: Int = 20) -> String {
        self.log.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

extension PgBouncer {
    /// Writes the configuration into a fresh directory and starts the process.
    private static func launch(database: TestDatabase, poolMode: String, defaultPoolSize: Int) throws -> PgBouncer {
        var template = Array("/tmp/projectionist-pgbouncer.XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw PgBouncerError("cannot create a directory in /tmp (errno \(errno))")
        }
        let directory = String(cString: created)
        do {
            let configuration = try PgBouncerConfiguration(
                database: database, listenPort: try PgBouncerConfiguration.freePort(), poolMode: poolMode,
                defaultPoolSize: defaultPoolSize, directory: directory)
            try configuration.ini.write(toFile: configuration.iniPath, atomically: false, encoding: .utf8)
            try configuration.userList.write(toFile: configuration.userListPath, atomically: false, encoding: .utf8)
            let logPath = "\(directory)/pgbouncer.log"
            var command = [Self.executable, configuration.iniPath]
            if getuid() == 0 {  // pgbouncer refuses to run as root
                guard let owner = getpwnam("postgres") else {
                    throw PgBouncerError("no user postgres to run pgbouncer as: run the tests with scripts/test, which creates it")
                }
                for path in [directory, configuration.iniPath, configuration.userListPath] {
                    chown(path, owner.pointee.pw_uid, owner.pointee.pw_gid)
                }
                // setpriv execs pgbouncer: the pid stays pgbouncer's.
                command = ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + command
            }
            let process: SpawnedProcess
            do {
                process = try SpawnedProcess(command[0], Array(command.dropFirst()), outputPath: logPath)
            } catch {
                throw PgBouncerError("cannot start \(command.joined(separator: " ")): \(error)")
            }
            return PgBouncer(
                connectionString: configuration.clientConnectionString, port: configuration.listenPort,
                directory: directory, process: process)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Polls with a real connection and `SELECT 1` until one succeeds.
    private func waitUntilReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: any Error = PgBouncerError("no attempt made")
        while ContinuousClock.now < deadline {
            guard self.process.isRunning else {
                throw PgBouncerError(
                    "pgbouncer exited with status \(self.process.status ?? -1) while starting; its log ends:\n\(self.logTail())")
            }
            do {
                let connection = try await PostgresConnection.connect(
                    ConnectionConfiguration(
                        connectionString: self.connectionString, applicationName: "projectionist-pgbouncer-check",
                        connectTimeoutSeconds: 2))
                try await connection.query("SELECT 1")
                await connection.close()
                return
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw PgBouncerError(
            """
            pgbouncer on 127.0.0.1:\(self.port) served no query within \(timeout) (last error: \(lastError)); \
            its log ends:
            \(self.logTail())
            """)
    }
}
