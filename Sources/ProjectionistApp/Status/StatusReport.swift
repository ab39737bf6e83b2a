import EventStore
import Foundation
import Postgres
import Projections

/// What `status` prints: the head and, per configured unit of work (each projection, or each
/// partition of a partitioned one), what its owner recorded and who owns it.
public struct StatusReport: Sendable {
    public struct Row: Sendable {
        /// The projection's name.
        public var name: String
        /// `"k/N"` for partition k of N; nil when unpartitioned.
        public var partition: String?
        public var position: Int64
        public var lag: Int64
        public var state: ProjectionState
        public var error: String?
        /// Seconds the owner's batch has been running, when longer than `worker.slow_batch_warn`.
        public var slowBatchSeconds: Int?
        /// The instance holding the unit's lease (its `worker_id`), with host and pid.
        public var owner: CheckpointRecord.Owner?
        /// The projection that took over a retired one's views.
        public var successor: String?
        /// Age of the oldest committed event not applied yet (0 when caught up).
        public var lagSeconds: Double = 0
        /// Events/s lately and, while catching up, seconds to the head at that rate.
        public var eventsPerSecond: Double?
        /// Whether some live instance configures the unit: false when instances are live and none
        /// of them has it in its projection list (nobody runs it); nil when that cannot be told
        /// (no live instance, or one that does not record its units).
        public var configuredLive: Bool?
        /// Aggregates the unit has parked (`on_error: park`): their events wait as dead letters.
        public var parkedAggregates = 0
        public var etaSeconds: Int? {
            guard self.state == .catchingUp, let rate = self.eventsPerSecond, rate > 0 else { return nil }
            return Int((Double(self.lag) / rate).rounded(.up))
        }

        public init(
            name: String, partition: String?, position: Int64, lag: Int64, state: ProjectionState, error: String? = nil,
            slowBatchSeconds: Int? = nil, owner: CheckpointRecord.Owner? = nil, successor: String? = nil,
            eventsPerSecond: Double? = nil
        ) {
            self.name = name
            self.partition = partition
            self.position = position
            self.lag = lag
            self.state = state
            self.error = error
            self.slowBatchSeconds = slowBatchSeconds
            self.owner = owner
            self.successor = successor
            self.eventsPerSecond = eventsPerSecond
        }
    }
    public var head: Int64
    public var rows: [Row]

    /// A heartbeat older than this means the daemon is not running (killed, or never started).
    static let staleAfter: Duration = .seconds(30)

    /// - Throws: `SchemaError` when the tables are missing.
    public static func read(_ config: ProjectionistConfiguration, on connection: PostgresConnection) async throws -> StatusReport {
        let schema = config.schema
        for table in [schema.eventsTable, schema.checkpointsTable] {
            guard try await connection.query("SELECT to_regclass($1) IS NOT NULL", [table.quoted])[0].decode(Bool.self, at: 0) else {
                throw SchemaError("table \(table) does not exist: run `projectionist migrate` first")
            }
        }
        let head = try await EventStore(schema.eventStore).latestPosition(on: connection)
        let units = config.units
        let names = units.map { WorkUnit.name($0.projection, $0.partition) }
        var found: [String: CheckpointRecord] = [:]
        let store = CheckpointStore(schema: schema)
        for record in try await store.records(names, on: connection) { found[record.name] = record }
        let ages = try await store.lagSeconds(names, on: connection)
        let liveUnits = try await Self.unitsOfLiveInstances(schema, ttl: config.worker.leaseTTL, on: connection)
        let parked = try await Self.parkedCounts(names, schema, on: connection)
        var rows: [Row] = []
        for (unit, name) in zip(units, names) {
            guard let record = found[name] else {
                var row = Row(name: unit.projection, partition: unit.partition?.description, position: 0, lag: head, state: .unknown)
                row.parkedAggregates = parked[name] ?? 0
                row.lagSeconds = try await Self.ageOfFirstEvent(schema, on: connection)
                rows.append(row)
                continue
            }
            let stale = record.heartbeatAge.map { $0 > Self.staleAfter } ?? true
            let recorded = record.state.flatMap(ProjectionState.init(rawValue:))
            let state: ProjectionState =
                record.successor != nil ? .retired : recorded == .stopped ? .stopped : stale ? .unknown : recorded ?? .unknown
            let slow = record.batchRunning.flatMap { $0 > config.worker.slowBatchWarn ? Int($0.components.seconds) : nil }
            rows.append(
                Row(
                    name: unit.projection, partition: unit.partition?.description, position: record.position,
                    lag: max(0, head - record.position), state: state, error: record.lastError, slowBatchSeconds: slow,
                    owner: state == .retired ? nil : record.owner, successor: record.successor,
                    eventsPerSecond: state == .catchingUp ? record.eventsPerSecond : (state == .idle ? 0 : nil)))
            rows[rows.count - 1].lagSeconds = state == .retired ? 0 : ages[name] ?? 0
            rows[rows.count - 1].parkedAggregates = parked[name] ?? 0
            if state != .retired, let configured = liveUnits {
                rows[rows.count - 1].configuredLive = configured.contains(name)
            }
        }
        return StatusReport(head: head, rows: rows)
    }

    /// The units the live instances (heartbeat within `ttl`) configure, as their `worker_nodes`
    /// rows say; nil when none is live, one does not record its units, or the table predates them.
    static func unitsOfLiveInstances(_ schema: Schema, ttl: Duration, on connection: PostgresConnection) async throws -> Set<String>? {
        let nodes = schema.nodesTable.quoted
        let hasUnits = try await connection.query(
            """
            SELECT to_regclass($1) IS NOT NULL AND EXISTS (
                SELECT FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'units' AND NOT attisdropped)
            """, [nodes])[0].decode(Bool.self, at: 0)
        guard hasUnits else { return nil }
        let seconds = Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        let rows = try await connection.query(
            "SELECT to_json(units)::text FROM \(nodes) WHERE heartbeat_at > now() - make_interval(secs => $1)", [seconds])
        guard !rows.isEmpty else { return nil }
        var units: Set<String> = []
        for row in rows {
            guard let json = try row.decode(String?.self, at: 0) else { return nil }
            units.formUnion(try JSONDecoder().decode([String].self, from: Data(json.utf8)))
        }
        return units
    }

    /// Parked aggregates per unit (`DeadLetterStore.parkedCounts`); none while the dead-letter
    /// table lacks the `status` column (`migrate` adds it).
    static func parkedCounts(_ units: [String], _ schema: Schema, on connection: PostgresConnection) async throws -> [String: Int] {
        let hasStatus = try await connection.query(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'status' AND NOT attisdropped)",
            [schema.deadLettersTable.quoted])[0].decode(Bool.self, at: 0)
        guard hasStatus else { return [:] }
        return try await DeadLetterStore(schema: schema).parkedCounts(units, on: connection)
    }

    /// A projection that never ran lags by the age of the first event.
    static func ageOfFirstEvent(_ schema: Schema, on connection: PostgresConnection) async throws -> Double {
        try await connection.query(
            "SELECT coalesce(greatest(0, extract(epoch FROM now() - (SELECT created_at FROM \(schema.eventsTable.quoted) ORDER BY global_position LIMIT 1)))::float8, 0)"
        )[0].decode(Double.self, at: 0)
    }

    public var table: String {
        let width = max(4, self.rows.map(\.label.count).max() ?? 0)
        func pad(_ text: String, _ count: Int, right: Bool = false) -> String {
            let space = String(repeating: " ", count: max(0, count - text.count))
            return right ? space + text : text + space
        }
        let ownerWidth = max(5, self.rows.map(\.ownerColumn.count).max() ?? 0)
        var lines = [
            "head: \(self.head)",
            "\(pad("NAME", width))  \(pad("POSITION", 12, right: true))  \(pad("LAG", 10, right: true))  \(pad("LAG S", 8, right: true))  \(pad("STATE", 14))  \(pad("OWNER", ownerWidth))  NOTES",
        ]
        for row in self.rows {
            let seconds = String(format: "%.1f", row.lagSeconds)
            lines.append(
                "\(pad(row.label, width))  \(pad(String(row.position), 12, right: true))  \(pad(String(row.lag), 10, right: true))  \(pad(seconds, 8, right: true))  \(pad(row.state.rawValue, 14))  \(pad(row.ownerColumn, ownerWidth))  \(row.note)")
        }
        return lines.joined(separator: "\n")
    }
}

extension StatusReport.Row {
    /// The table's first column: `name`, or `name k/N` for a partition.
    var label: String { self.partition.map { "\(self.name) \($0)" } ?? self.name }

    /// The table's owner column: `host:pid (token T, lease N s)`, or `-` without an owner.
    var ownerColumn: String {
        guard let owner = self.owner else { return "-" }
        let lease = owner.leaseExpiresIn.map { "lease \(max(0, Int($0.components.seconds))) s" } ?? "no lease"
        return "\(owner.hostDescription) (token \(owner.token), \(lease))"
    }

    /// The table's last column: the successor of a retired projection, the rate and ETA while
    /// catching up, a batch running past `slow_batch_warn`, a unit no live instance configures,
    /// its parked aggregates, and the last error.
    var note: String {
        let successor = self.successor.map { "replaced by \($0)" }
        let unconfigured = self.configuredLive == false ? "no live instance has it configured" : nil
        let progress = self.etaSeconds.map { eta in "\(Int(self.eventsPerSecond ?? 0)) events/s, ETA \(eta) s" }
        let slow = self.slowBatchSeconds.map { "batch running \($0) s (slow_batch_warn)" }
        let parked = self.parkedAggregates > 0 ? "\(self.parkedAggregates) parked" : nil
        return [successor, progress, slow, unconfigured, parked, self.error].compactMap { $0 }.joined(separator: "; ")
    }
}

extension CheckpointRecord.Owner {
    /// `host:pid` of the instance (its id when the host is not recorded).
    var hostDescription: String {
        guard let hostname else { return self.instance }
        return self.pid.map { "\(hostname):\($0)" } ?? hostname
    }
}
