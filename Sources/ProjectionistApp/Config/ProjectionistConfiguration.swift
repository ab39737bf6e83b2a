import Encryption
import EventStore
import Foundation
import Postgres
import Projections
import Yams

/// The daemon's configuration: the YAML file of docs/reference.md, validated strictly, with the
/// environment's overrides applied.
public struct ProjectionistConfiguration: Sendable {
    /// The runtime's defaults: a key the file leaves out takes its value from here, the one place
    /// defaults are defined.
    static let runtimeDefaults = RuntimeOptions()

    public struct Database: Sendable {
        /// URL or keyword string; empty lets libpq read `PG*` variables. A secret: never logged.
        public var url = ""
        public var passwordFile: String?
        public var startupTimeout: Duration = .seconds(30)
        /// `transaction` behind PgBouncer in transaction mode: no LISTEN, no prepared statements
        /// (the daemon holds no session advisory lock).
        public var pooling = runtimeDefaults.pooling
        /// Every server connection `run` holds at once, all included (`RuntimeOptions.maxConnections`).
        public var maxConnections = runtimeDefaults.maxConnections
    }

    public struct Store: Sendable {
        public var eventsTable = QualifiedName(name: "events")
        /// `aggregate` (default) or `stream`: the events table's identity columns and heads table.
        public var layout = EventLayout.aggregate
        /// The heads table: `store.aggregate_heads_table` or `store.stream_heads_table`, as the layout
        /// says (default `aggregate_heads`, `stream_heads`).
        public var headsTable = EventLayout.aggregate.defaultHeadsTable
        /// How `migrate` creates the events table (when it owns the schema).
        public var partitioning = EventPartitioning.none
        public var notifyChannel = "projectionist_events"
        public var manageSchema = true
        /// Off by default (see `Schema.notifyTrigger`): `true` trades writer throughput for latency.
        public var notifyTrigger = false
        public var allowSequenceCache = runtimeDefaults.allowSequenceCache
    }

    public struct Worker: Sendable {
        public var checkpointsTable = QualifiedName(name: "consumer_checkpoints")
        public var gapSkipsTable = QualifiedName(name: "consumer_gap_skips")
        public var deadLettersTable = QualifiedName(name: "consumer_dead_letters")
        public var batchSize = runtimeDefaults.batchSize
        public var pollInterval = runtimeDefaults.pollInterval
        public var maxPollInterval = runtimeDefaults.maxPollInterval
        public var gapWarnAfter = runtimeDefaults.gapWarnAfter
        /// nil (`never`): a gap whose owner may still commit is never skipped.
        public var gapSkipAfter = runtimeDefaults.gapSkipAfter
        /// A batch running longer is reported (log, `STATUS=`, `status`); never a watchdog kill.
        public var slowBatchWarn = runtimeDefaults.slowBatchWarn
        /// The lease of a unit of work across instances (see `RuntimeOptions.leaseTTL`).
        public var leaseTTL = runtimeDefaults.leaseTTL
    }

    /// The HTTP listener: `/metrics`, `/healthz`, `/readyz`, `/status`.
    public struct Metrics: Sendable {
        /// Nil (an empty `listen`): no listener.
        public var listen: ListenAddress? = .default
        /// Where `listen` came from, for messages: the key, or `PROJECTIONIST_METRICS_LISTEN`.
        public var listenSource = "metrics.listen"
    }

    /// Replaces `metrics.listen` for one instance (e.g. `Environment=` in a template unit).
    public static let listenVariable = "PROJECTIONIST_METRICS_LISTEN"

    /// When `/readyz` says not ready, beyond a failed projection (0: no limit).
    public struct Health: Sendable {
        public var maxLagEvents: Int64 = 0
        public var maxLagSeconds: Double = 0
    }

    /// One projection declared in SQL.
    public struct Projection: Sendable {
        public typealias OnError = Projections.OnError
        public var name: String
        public var aggregateTypes: [String]?
        public var onError: OnError = .stop
        public var partitions = 1
        /// View → table; `publish: VIEW` publishes the table named like the projection.
        public var publish: [String: String] = [:]
        public var replaces: String?
        /// `$payload` arrives with encrypted fields decrypted (needs `encryption`).
        public var decrypt = false
        /// Encrypted fields in the application's own layout (`decrypt:` as a list).
        public var encryptedFields: [EncryptedFieldMapping] = []
        /// SQL removing its tables for `projectionist drop` (default: its reset SQL).
        public var drop: String?
        public var setup: String?
        public var reset: String?
        /// With `on_error: park`: the base delay of the daemon's own retries of parked aggregates.
        public var retryParked: Duration?
        /// Statements removing one aggregate's rows (`reset NAME --aggregate TYPE/ID`).
        public var resetAggregate: [String] = []
        /// Event type → statements, in the file's order.
        public var handlers: [(eventType: String, statements: [String])] = []
        /// The line of the entry, for messages.
        public var line: Int?
    }

    public var file: String
    public var database = Database()
    public var store = Store()
    public var worker = Worker()
    public var metrics = Metrics()
    public var health = Health()
    /// Nil: no keyring (no projection may decrypt).
    public var encryption: Encryption?
    public var projections: [Projection] = []

    public init(file: String) { self.file = file }

    /// The table names and trigger settings as the migration and the runtime see them.
    public var schema: Schema {
        var schema = Schema()
        schema.eventsTable = self.store.eventsTable
        schema.layout = self.store.layout
        schema.headsTable = self.store.headsTable
        schema.partitioning = self.store.partitioning
        schema.checkpointsTable = self.worker.checkpointsTable
        schema.gapSkipsTable = self.worker.gapSkipsTable
        schema.deadLettersTable = self.worker.deadLettersTable
        schema.notifyChannel = self.store.notifyChannel.isEmpty ? nil : self.store.notifyChannel
        schema.manageEventStore = self.store.manageSchema
        schema.notifyTrigger = self.store.notifyTrigger
        return schema
    }

    /// How to connect: the URL (after environment overrides) plus the password file's password.
    /// - Throws: `ConfigurationError` naming `database.password_file` when it cannot be read.
    public func connectionConfiguration() throws -> ConnectionConfiguration {
        var configuration = ConnectionConfiguration(connectionString: self.database.url)
        if let path = self.database.passwordFile {
            do {
                try configuration.readPassword(fromFile: path)
            } catch {
                throw ConfigurationError(
                    file: self.file, keyPath: "database.password_file", message: "cannot read \(path): check the path and its permissions")
            }
        }
        return configuration
    }

    /// The file to read: `--config`, else `$PROJECTIONIST_CONFIG`, else the system path.
    public static func path(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        option ?? environment["PROJECTIONIST_CONFIG"] ?? "/etc/projectionist/projectionist.yaml"
    }

    /// Reads, validates and applies environment overrides.
    /// - Throws: `ConfigurationError` for an unreadable file, bad YAML, or any invalid key.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ProjectionistConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, message: "cannot read the configuration file (missing or not readable)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(file: path, message: "the file is not UTF-8 text")
        }
        var configuration = try self.parse(text, file: path)
        if let url = environment["PROJECTIONIST_DATABASE_URL"] ?? environment["DATABASE_URL"], !url.isEmpty {
            configuration.database.url = url
        }
        if let text = environment[Self.listenVariable], !text.isEmpty {
            guard let address = ListenAddress(parsing: text) else {
                throw ConfigurationError(
                    file: path, keyPath: "metrics.listen",
                    message: "\(Self.listenVariable) is '\(text)', not host:port (e.g. 127.0.0.1:9465 or [::1]:9465); it replaces this key")
            }
            configuration.metrics.listen = address
            configuration.metrics.listenSource = Self.listenVariable
        }
        return configuration
    }

    /// Parses YAML text (no environment overrides).
    public static func parse(_ text: String, file: String) throws -> ProjectionistConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            // Yams' description repeats the offending text on further lines; one line is enough.
            let summary = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw ConfigurationError(file: file, line: Self.line(of: error), message: "invalid YAML: \(summary)")
        } catch {
            throw ConfigurationError(file: file, message: "invalid YAML: \(error)")
        }
        var configuration = ProjectionistConfiguration(file: file)
        guard let root else { return configuration }
        let reader = YAMLReader(file: file)
        let top = try reader.mapping(root, at: "", allowed: Keys.top)
        if let node = top["database"] { try configuration.readDatabase(node, reader) }
        if let node = top["store"] { try configuration.readStore(node, reader) }
        if let node = top["worker"] { try configuration.readWorker(node, reader) }
        if let node = top["metrics"] { try configuration.readMetrics(node, reader) }
        if let node = top["health"] { try configuration.readHealth(node, reader) }
        if let node = top["encryption"] { try configuration.readEncryption(node, reader) }
        if let node = top["projections"] { try configuration.readProjections(node, reader) }
        return configuration
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: nil
        }
    }

    mutating func readDatabase(_ node: Node, _ reader: YAMLReader) throws {
        let keys = try reader.mapping(node, at: "database", allowed: Keys.database)
        if let value = keys["url"] { self.database.url = try reader.string(value, at: "database.url") }
        if let value = keys["password_file"] { self.database.passwordFile = try reader.string(value, at: "database.password_file") }
        if let value = keys["startup_timeout"] {
            self.database.startupTimeout = try reader.duration(value, at: "database.startup_timeout", in: Bounds.startupTimeout)
        }
        if let value = keys["pooling"] {
            let text = try reader.string(value, at: "database.pooling")
            guard let pooling = Pooling(rawValue: text) else {
                throw reader.error("database.pooling", value, "expected session or transaction (PgBouncer's pool_mode), found '\(text)'")
            }
            self.database.pooling = pooling
        }
        if let value = keys["max_connections"] {
            self.database.maxConnections = try reader.integer(value, at: "database.max_connections", in: Bounds.maxConnections)
        }
    }

    mutating func readStore(_ node: Node, _ reader: YAMLReader) throws {
        let keys = try reader.mapping(node, at: "store", allowed: Keys.store)
        if let value = keys["events_table"] { self.store.eventsTable = try Self.tableName(value, "store.events_table", reader) }
        try self.readLayout(keys, reader)
        if let value = keys["notify_channel"] {
            let channel = reader.isNull(value) ? "" : try reader.string(value, at: "store.notify_channel")
            if let problem = NotifyChannel.problem(with: channel) { throw reader.error("store.notify_channel", value, problem) }
            self.store.notifyChannel = channel
        }
        if let value = keys["manage_schema"] { self.store.manageSchema = try reader.bool(value, at: "store.manage_schema") }
        if let value = keys["notify_trigger"] { self.store.notifyTrigger = try reader.bool(value, at: "store.notify_trigger") }
        if let value = keys["allow_sequence_cache"] {
            self.store.allowSequenceCache = try reader.bool(value, at: "store.allow_sequence_cache")
        }
    }

    mutating func readWorker(_ node: Node, _ reader: YAMLReader) throws {
        let keys = try reader.mapping(node, at: "worker", allowed: Keys.worker)
        if let value = keys["checkpoints_table"] { self.worker.checkpointsTable = try Self.tableName(value, "worker.checkpoints_table", reader) }
        if let value = keys["gap_skips_table"] { self.worker.gapSkipsTable = try Self.tableName(value, "worker.gap_skips_table", reader) }
        if let value = keys["dead_letters_table"] { self.worker.deadLettersTable = try Self.tableName(value, "worker.dead_letters_table", reader) }
        if let value = keys["batch_size"] {
            self.worker.batchSize = try reader.integer(value, at: "worker.batch_size", in: Bounds.batchSize, why: " events per batch")
        }
        if let value = keys["poll_interval"] {
            self.worker.pollInterval = try reader.duration(
                value, at: "worker.poll_interval", in: Bounds.pollInterval, why: " (0 would poll without pause)")
        }
        if let value = keys["max_poll_interval"] {
            self.worker.maxPollInterval = try reader.duration(value, at: "worker.max_poll_interval", in: Bounds.maxPollInterval)
        }
        if let value = keys["gap_warn_after"] {
            self.worker.gapWarnAfter = try reader.duration(value, at: "worker.gap_warn_after", in: Bounds.gapWarnAfter)
        }
        if let value = keys["gap_skip_after"] {
            let text = try reader.string(value, at: "worker.gap_skip_after")
            self.worker.gapSkipAfter = text == "never" ? nil : try reader.duration(value, at: "worker.gap_skip_after", in: Bounds.gapSkipAfter)
        }
        if let value = keys["slow_batch_warn"] {
            self.worker.slowBatchWarn = try reader.duration(value, at: "worker.slow_batch_warn", in: Bounds.slowBatchWarn)
        }
        if let value = keys["lease_ttl"] {
            self.worker.leaseTTL = try reader.duration(
                value, at: "worker.lease_ttl", in: Bounds.leaseTTL, why: " (instances renew leases several times within it)")
        }
        if self.worker.maxPollInterval < self.worker.pollInterval {
            throw reader.error("worker.max_poll_interval", keys["max_poll_interval"], "must not be shorter than worker.poll_interval")
        }
    }

    mutating func readMetrics(_ node: Node, _ reader: YAMLReader) throws {
        let keys = try reader.mapping(node, at: "metrics", allowed: Keys.metrics)
        if let value = keys["listen"] {
            let text = reader.isNull(value) ? "" : try reader.string(value, at: "metrics.listen")
            if text.isEmpty {
                self.metrics.listen = nil
            } else {
                guard let address = ListenAddress(parsing: text) else {
                    throw reader.error("metrics.listen", value, "expected host:port (e.g. 127.0.0.1:9464 or [::1]:9464), or empty to turn the listener off; found '\(text)'")
                }
                self.metrics.listen = address
            }
        }
    }

    mutating func readHealth(_ node: Node, _ reader: YAMLReader) throws {
        let keys = try reader.mapping(node, at: "health", allowed: Keys.health)
        if let value = keys["max_lag_events"] {
            guard case .scalar(let scalar) = value, scalar.style == .plain, let number = Int64(scalar.string), number >= 0 else {
                throw reader.error("health.max_lag_events", value, "expected a whole number of events, 0 for no limit")
            }
            self.health.maxLagEvents = number
        }
        if let value = keys["max_lag_seconds"] {
            guard case .scalar(let scalar) = value, scalar.style == .plain, let number = Double(scalar.string), number >= 0, number.isFinite else {
                throw reader.error("health.max_lag_seconds", value, "expected a number of seconds, 0 for no limit")
            }
            self.health.maxLagSeconds = number
        }
    }

    /// A NUL byte would cut the name short where it is sent as text (a text array's literal).
    static func refuseNUL(_ text: String, _ path: String, _ node: Node, _ reader: YAMLReader) throws {
        guard text.utf8.contains(0) else { return }
        throw reader.error(path, node, "contains a NUL byte (\\0), which PostgreSQL's text cannot hold")
    }

    static func tableName(_ node: Node, _ path: String, _ reader: YAMLReader) throws -> QualifiedName {
        let text = try reader.string(node, at: path)
        do {
            return try QualifiedName(parsing: text)
        } catch {
            throw reader.error(path, node, "'\(text)' is not a table name: use name or schema.name")
        }
    }
}
