import CLibPQ
import Glibc
import Synchronization

/// One connection to PostgreSQL over libpq: statements with bound parameters, transactions,
/// pipelines, LISTEN/NOTIFY.
///
/// Threading: every libpq call runs on the connection's own serial dispatch queue (the actor's
/// executor, see `ConnectionExecutor`), never on Swift's cooperative thread pool. We chose a
/// queue per connection over libpq's non-blocking API with socket readiness because it keeps
/// the synchronous, well-trodden libpq paths (connect, exec, prepare) and costs one thread per
/// connection, which is what the runtime holds anyway (one connection per projection). The
/// pipeline and the notification wait do use non-blocking sockets and `poll(2)` where they
/// must (to avoid the pipeline's send/receive deadlock and to wake a waiting listener).
///
/// Cancelling the calling task cancels the statement on the server (SQLSTATE `57014`).
/// A connection belongs to one task at a time, as a `PGconn` does.
public actor PostgresConnection {
    private let executor: ConnectionExecutor
    var handle: OpaquePointer?  // PGconn *
    private let canceller = Canceller(handle: nil)
    /// An eventfd that wakes a notification wait when its task is cancelled.
    private nonisolated let wakeDescriptor: Int32
    nonisolated let configuration: ConnectionConfiguration
    var pendingNotifications: [PostgresNotification] = []
    /// Pipelines sent and not yet read (see `send(_:discardingResults:)`).
    var pipelines = PipelinesInFlight()
    /// Statement names prepared on this connection.
    public private(set) var preparedStatements: Set<String> = []
    /// What users of a shared connection noted as done on it (e.g. a projection's statements
    /// prepared), so that it is done once per connection, not once per borrow.
    public private(set) var preparedKeys: Set<String> = []
    /// Set by the notice receiver when the server ended the session outside a statement (a
    /// FATAL error arriving on an idle connection, as `pg_terminate_backend` sends it). The
    /// server closes the socket only after that, so this is known before libpq sees end of file.
    private let sessionEnded = UnsafeMutablePointer<Bool>.allocate(capacity: 1)

    /// Notes `key` as done on this connection (see `preparedKeys`).
    public func notePrepared(_ key: String) { self.preparedKeys.insert(key) }

    public nonisolated var unownedExecutor: UnownedSerialExecutor { self.executor.asUnownedSerialExecutor() }

    private init(configuration: ConnectionConfiguration) {
        self.configuration = configuration
        self.executor = ConnectionExecutor(label: "projectionist.postgres.connection")
        self.wakeDescriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        self.sessionEnded.initialize(to: false)
    }

    /// How many connections this process has open now (the daemon's `open connections` gauge).
    public static var openCount: Int { Self.open.load(ordering: .relaxed) }
    private static let open = Atomic<Int>(0)

    isolated deinit {
        if let handle {
            PQfinish(handle)
            Self.open.subtract(1, ordering: .relaxed)
        }
        if self.wakeDescriptor >= 0 { Glibc.close(self.wakeDescriptor) }
        self.sessionEnded.deallocate()
    }

    /// Opens a connection.
    /// - Throws: `PostgresError` `.connectionFailed` with libpq's reason (password removed).
    public static func connect(_ configuration: ConnectionConfiguration) async throws -> PostgresConnection {
        let connection = PostgresConnection(configuration: configuration)
        try await connection.open()
        return connection
    }

    private func open() throws {
        // Later entries override earlier ones; `dbname` is expanded as the full connection string,
        // so our defaults come first and the password file's password last.
        var pairs: [(String, String)] = [
            ("connect_timeout", String(self.configuration.connectTimeoutSeconds)),
            ("fallback_application_name", self.configuration.applicationName),
            ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
        ]
        if !self.configuration.connectionString.isEmpty { pairs.append(("dbname", self.configuration.connectionString)) }
        if let password = self.configuration.password { pairs.append(("password", password)) }
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let connection: OpaquePointer? = (keywords.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { keys in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { vals in
                PQconnectdbParams(keys.baseAddress, vals.baseAddress, 1)
            }
        }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let error = PostgresError.fromConnection(connection, configuration: self.configuration, code: .connectionFailed)
            if let connection { PQfinish(connection) }
            throw error
        }
        // NOTICEs (e.g. "relation already exists, skipping") would go to stderr; they are not errors.
        // An error outside a statement reaches libpq's notice path too: a FATAL one ends the session.
        PQsetNoticeReceiver(
            connection,
            { context, result in
                guard let context, let result, let severity = PQresultErrorField(result, CLibPQ_DIAG_SEVERITY_NONLOCALIZED) else { return }
                if ["FATAL", "PANIC"].contains(String(cString: severity)) { context.assumingMemoryBound(to: Bool.self).pointee = true }
            }, UnsafeMutableRawPointer(self.sessionEnded))
        self.handle = connection
        Self.open.add(1, ordering: .relaxed)
        self.canceller.replace(handle: PQgetCancel(connection))
    }

    /// Closes the connection; later calls fail with `.usage`.
    public func close() {
        self.canceller.replace(handle: nil)
        if let handle {
            PQfinish(handle)
            Self.open.subtract(1, ordering: .relaxed)
        }
        self.handle = nil
        self.pipelines = PipelinesInFlight()
    }

    /// Whether libpq still considers the connection usable.
    public var isConnected: Bool { self.handle.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Whether another user may borrow the connection as it is: connected, outside a transaction,
    /// no pipeline in flight (a pool closes it otherwise).
    public var isReusable: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK, PQtransactionStatus(handle) == PQTRANS_IDLE else { return false }
        return !self.pipelines.active && self.pipelines.reading.isEmpty && self.pipelines.finished.isEmpty
    }

    /// Whether the server end is still there, without a round trip: reads whatever arrived on the
    /// idle socket (a terminated backend's FATAL message, then end of file) and says whether the
    /// session goes on: no FATAL message came and libpq still considers the connection usable. A
    /// pool asks this before lending an idle connection, so that a backend ended while idle costs
    /// no borrower a failed statement, even when its socket is not closed yet.
    public func isAliveWhileIdle() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        let socket = PQsocket(handle)
        guard socket >= 0 else { return false }
        for _ in 0..<4 {
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { break }
            // libpq's socket is non-blocking: this reads what is there and returns.
            if PQconsumeInput(handle) == 0 { return false }
        }
        self.collectNotifications()  // parses what arrived: a FATAL message sets `sessionEnded`
        return PQstatus(handle) == CONNECTION_OK && !self.sessionEnded.pointee
    }

    /// The server process id serving this connection (`pg_backend_pid()`).
    public var backendPID: Int32 { self.handle.map { PQbackendPID($0) } ?? 0 }

    /// The server's version number, e.g. 150018.
    public var serverVersion: Int32 { self.handle.map { PQserverVersion($0) } ?? 0 }

    // MARK: - Statements

    /// Runs one statement with bound parameters (`$1`, `$2`, ...) and returns its rows.
    /// Results come in binary format (exact, no server settings involved) unless `textResults`.
    @discardableResult
    public nonisolated func query(
        _ sql: String, _ parameters: [any PostgresEncodable] = [], textResults: Bool = false
    ) async throws -> QueryResult {
        let bound = parameters.map(\.postgresParameter)
        return try await self.cancellable { connection in
            try connection.runQuery(sql, bound, textResults: textResults)
        }
    }

    /// Runs one or more `;`-separated statements without parameters (the simple query protocol),
    /// e.g. a migration or a projection's `setup` script. Returns the last statement's result.
    @discardableResult
    public nonisolated func execute(script sql: String) async throws -> QueryResult {
        try await self.cancellable { connection in try connection.runScript(sql) }
    }

    /// Prepares `sql` under `name` once per connection; preparing a known name again is a no-op.
    /// - Parameter types: parameter type OIDs (0 or missing: inferred by the server).
    public nonisolated func prepare(_ name: String, _ sql: String, types: [UInt32] = []) async throws {
        try await self.cancellable { connection in try connection.runPrepare(name, sql, types: types) }
    }

    /// Parses and plans `sql` as the unnamed statement without running it (replacing any
    /// earlier unnamed one), as a check: a wrong statement (syntax, a missing table or column, a
    /// type that does not fit) throws the server's error.
    /// - Parameter types: parameter type OIDs (0 or missing: inferred by the server).
    public nonisolated func parse(_ sql: String, types: [UInt32] = []) async throws {
        try await self.cancellable { connection in
            let handle = try connection.requireHandle()
            let oids = types.map { Oid($0) }
            _ = try connection.check(oids.withUnsafeBufferPointer { PQprepare(handle, "", sql, Int32(oids.count), $0.baseAddress) })
        }
    }

    /// Runs a statement prepared with `prepare(_:_:)`.
    @discardableResult
    public nonisolated func queryPrepared(_ name: String, _ parameters: [any PostgresEncodable] = []) async throws
        -> QueryResult
    {
        let bound = parameters.map(\.postgresParameter)
        return try await self.cancellable { connection in try connection.runPrepared(name, bound) }
    }

    /// Runs `body` on the connection's queue; cancelling the task cancels the statement.
    nonisolated func cancellable<T: Sendable>(
        _ body: @Sendable (isolated PostgresConnection) throws -> T
    ) async throws -> T {
        if Task.isCancelled { throw PostgresError(code: .cancelled, message: "the task was cancelled") }
        return try await withTaskCancellationHandler {
            try await self.run(body, cancellable: true)
        } onCancel: {
            self.canceller.cancel()
            self.wake()
        }
    }

    /// Runs `body` on the connection's queue, immune to task cancellation (used for ROLLBACK).
    nonisolated func uncancellable<T: Sendable>(_ body: @Sendable (isolated PostgresConnection) throws -> T)
        async throws -> T
    {
        try await self.run(body, cancellable: false)
    }

    private func run<T: Sendable>(_ body: @Sendable (isolated PostgresConnection) throws -> T, cancellable: Bool)
        throws -> T
    {
        if cancellable { self.canceller.begin() }
        defer { if cancellable { self.canceller.end() } }
        return try body(self)
    }

    func requireHandle() throws -> OpaquePointer {
        guard let handle else { throw PostgresError(code: .usage, message: "the connection is closed") }
        return handle
    }

    func runQuery(_ sql: String, _ parameters: [PostgresParameter], textResults: Bool) throws -> QueryResult {
        let handle = try self.requireHandle()
        let result = Self.withParameterArrays(parameters) { types, values, lengths, formats in
            PQexecParams(handle, sql, Int32(parameters.count), types, values, lengths, formats, textResults ? 0 : 1)
        }
        return try self.check(result)
    }

    func runScript(_ sql: String) throws -> QueryResult {
        let handle = try self.requireHandle()
        return try self.check(PQexec(handle, sql))
    }

    func runPrepare(_ name: String, _ sql: String, types: [UInt32]) throws {
        guard !self.preparedStatements.contains(name) else { return }
        let handle = try self.requireHandle()
        let oids = types.map { Oid($0) }
        _ = try self.check(oids.withUnsafeBufferPointer { PQprepare(handle, name, sql, Int32(oids.count), $0.baseAddress) })
        self.preparedStatements.insert(name)
    }

    func runPrepared(_ name: String, _ parameters: [PostgresParameter]) throws -> QueryResult {
        let handle = try self.requireHandle()
        let result = Self.withParameterArrays(parameters) { _, values, lengths, formats in
            PQexecPrepared(handle, name, Int32(parameters.count), values, lengths, formats, 1)
        }
        return try self.check(result)
    }

    /// Turns a finished `PGresult` into rows or a `PostgresError`.
    func check(_ result: OpaquePointer?, statementIndex: Int? = nil) throws -> QueryResult {
        self.collectNotifications()
        switch result.map(PQresultStatus) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return QueryResult(taking: result!)
        default:
            let error = PostgresError.from(
                result: result, connection: self.handle, configuration: self.configuration,
                statementIndex: statementIndex)
            if let result { PQclear(result) }
            throw error
        }
    }

    /// Calls `body` with libpq's parallel parameter arrays; the pointers live only during the call.
    static func withParameterArrays<R>(
        _ parameters: [PostgresParameter],
        _ body: (
            UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?
        ) -> R
    ) -> R {
        let types = parameters.map { Oid($0.oid) }
        let lengths = parameters.map { Int32($0.bytes?.count ?? 0) }
        let formats = parameters.map { $0.format.rawValue }
        // One contiguous buffer for every value: one allocation instead of one per parameter.
        let total = parameters.reduce(0) { $0 + ($1.bytes?.count ?? 0) + 1 }
        let storage = UnsafeMutablePointer<CChar>.allocate(capacity: max(total, 1))
        defer { storage.deallocate() }
        var pointers: [UnsafePointer<CChar>?] = []
        pointers.reserveCapacity(parameters.count)
        var offset = 0
        for parameter in parameters {
            guard let bytes = parameter.bytes else {
                pointers.append(nil)
                continue
            }
            bytes.withUnsafeBytes { raw in
                if raw.count > 0 { UnsafeMutableRawPointer(storage + offset).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            }
            storage[offset + bytes.count] = 0  // text values must be NUL-terminated
            pointers.append(UnsafePointer(storage + offset))
            offset += bytes.count + 1
        }
        return types.withUnsafeBufferPointer { types in
            pointers.withUnsafeBufferPointer { values in
                lengths.withUnsafeBufferPointer { lengths in
                    formats.withUnsafeBufferPointer { formats in
                        body(types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
                    }
                }
            }
        }
    }

    // MARK: - Waking and polling

    /// Interrupts a `poll` in progress on this connection's queue (a notification wait).
    nonisolated func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(self.wakeDescriptor, &one, 8)
    }

    /// Waits until the socket is ready for `events` or the connection is woken.
    /// - Returns: the socket's returned events (0 when woken).
    func waitForSocket(_ events: Int16, timeoutMilliseconds: Int32 = -1) throws -> Int16 {
        let handle = try self.requireHandle()
        let socket = PQsocket(handle)
        guard socket >= 0 else { throw PostgresError.fromConnection(handle, configuration: self.configuration) }
        var descriptors = [
            pollfd(fd: socket, events: events, revents: 0),
            pollfd(fd: self.wakeDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let count = poll(&descriptors, 2, timeoutMilliseconds)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw PostgresError(code: .connectionLost, message: "poll failed: errno \(errno)") }
            if descriptors[1].revents != 0 {
                var value: UInt64 = 0
                _ = Glibc.read(self.wakeDescriptor, &value, 8)
            }
            return descriptors[0].revents
        }
    }
}
