/// A test daemon's configuration file, the one builder the daemon tests share: the database, a
/// short start-up timeout, quick polling, the HTTP listener off (daemons of parallel tests would
/// all want the default port), then what a test adds.
public struct TestDaemonConfig: Sendable {
    /// `database.url`.
    public var url: String
    public var startupTimeout = "5s"
    /// `database.pooling`, when set.
    public var pooling: String?
    /// More lines under `database:`, each indented two spaces.
    public var database = ""
    /// More lines under `worker:`, each indented two spaces.
    public var worker: String
    /// `metrics.listen`; nil leaves the `metrics` section to `sections`.
    public var listen: String?
    /// More top-level sections, as YAML.
    public var sections: String
    /// The entries under `projections:`, as YAML; without them the file ends before `projections:`
    /// (the caller goes on).
    public var projections: String

    public init(
        url: String, pooling: String? = nil, worker: String = "", listen: String? = "\"\"", sections: String = "",
        projections: String = ""
    ) {
        self.url = url
        self.pooling = pooling
        self.worker = worker
        self.listen = listen
        self.sections = sections
        self.projections = projections
    }

    public init(
        _ db: TestDatabase, pooling: String? = nil, worker: String = "", listen: String? = "\"\"", sections: String = "",
        projections: String = ""
    ) {
        self.init(url: db.connectionString, pooling: pooling, worker: worker, listen: listen, sections: sections, projections: projections)
    }

    /// The file's text.
    public var yaml: String {
        var lines = ["database:", "  url: \"\(self.url)\"", "  startup_timeout: \(self.startupTimeout)"]
        if let pooling { lines.append("  pooling: \(pooling)") }
        if !self.database.isEmpty { lines.append(self.database) }
        lines += ["worker:", "  poll_interval: 100ms", "  max_poll_interval: 500ms"]
        if !self.worker.isEmpty { lines.append(self.worker) }
        if let listen { lines += ["metrics:", "  listen: \(listen)"] }
        if !self.sections.isEmpty { lines.append(self.sections) }
        if !self.projections.isEmpty { lines += ["projections:", self.projections] }
        return lines.joined(separator: "\n")
    }

    /// Writes the file. - Returns: its path (`TemporaryFile.remove` it when done).
    public func write() -> String { TemporaryFile.write(self.yaml) }
}
