import EventStore
import Foundation
import Postgres
import Projections

/// What `status` prints: the head and, per configured projection, what the daemon recorded.
public struct StatusReport: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var position: Int64
        public var lag: Int64
        public var state: String
        public var error: String?
        /// Seconds the owner's batch has been running, when longer than `worker.slow_batch_warn`.
        public var slowBatchSeconds: Int?
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
        let names = config.projections.map(\.name)
        var found: [String: Row] = [:]
        for record in try await CheckpointStore(schema: schema).records(names, on: connection) {
            let stale = record.heartbeatAge.map { $0 > Self.staleAfter } ?? true
            let state = record.state == "stopped" ? "stopped" : (record.state == nil || stale ? "unknown" : record.state!)
            let slow = record.batchRunning.flatMap { $0 > config.worker.slowBatchWarn ? Int($0.components.seconds) : nil }
            found[record.name] = Row(
                name: record.name, position: record.position, lag: max(0, head - record.position), state: state,
                error: record.lastError, slowBatchSeconds: slow)
        }
        return StatusReport(
            head: head,
            rows: names.map { found[$0] ?? Row(name: $0, position: 0, lag: head, state: "unknown", error: nil, slowBatchSeconds: nil) })
    }

    public var json: String {
        let projections: [[String: Any]] = self.rows.map {
            [
                "name": $0.name, "position": $0.position, "lag": $0.lag, "state": $0.state, "error": $0.error ?? NSNull(),
                "slow_batch_seconds": $0.slowBatchSeconds ?? NSNull(),
            ]
        }
        let data = try! JSONSerialization.data(
            withJSONObject: ["head": self.head, "projections": projections], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    public var table: String {
        let width = max(4, self.rows.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ count: Int, right: Bool = false) -> String {
            let space = String(repeating: " ", count: max(0, count - text.count))
            return right ? space + text : text + space
        }
        var lines = ["head: \(self.head)", "\(pad("NAME", width))  \(pad("POSITION", 12, right: true))  \(pad("LAG", 10, right: true))  \(pad("STATE", 14))  ERROR"]
        for row in self.rows {
            lines.append(
                "\(pad(row.name, width))  \(pad(String(row.position), 12, right: true))  \(pad(String(row.lag), 10, right: true))  \(pad(row.state, 14))  \(row.note)")
        }
        return lines.joined(separator: "\n")
    }
}

extension StatusReport.Row {
    /// The table's last column: the last error, and a batch running past `slow_batch_warn`.
    var note: String {
        let slow = self.slowBatchSeconds.map { "batch running \($0) s (slow_batch_warn)" }
        return [slow, self.error].compactMap { $0 }.joined(separator: "; ")
    }
}
