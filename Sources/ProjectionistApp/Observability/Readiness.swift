import Foundation
import Projections

/// `/readyz`'s verdict, from the status board: ready once started, while no unit this instance
/// runs is `failed` or beyond `health.max_lag_events` / `health.max_lag_seconds`. A pure value.
struct Readiness: Sendable, Equatable {
    struct Problem: Sendable, Equatable {
        var name: String
        var partition: String?
        var reason: String
    }

    var ready: Bool
    var reason: String?
    var problems: [Problem] = []

    static func judge(started: Bool, statuses: [ProjectionStatus], health: ProjectionistConfiguration.Health) -> Readiness {
        guard started else { return Readiness(ready: false, reason: "starting: waiting for the database and the schema check") }
        var problems: [Problem] = []
        for status in statuses where ![.standby, .retired, .stopped].contains(status.state) {
            let unit = WorkUnit.parse(status.name)
            var reasons: [String] = []
            if status.state == .failed { reasons.append("failed: \(status.lastError ?? "unknown error")") }
            if health.maxLagEvents > 0, status.lag > health.maxLagEvents {
                reasons.append("lag \(status.lag) events > health.max_lag_events \(health.maxLagEvents)")
            }
            if health.maxLagSeconds > 0, let seconds = status.lagSeconds, seconds > health.maxLagSeconds {
                reasons.append(String(format: "lag %.1f s > health.max_lag_seconds %g", seconds, health.maxLagSeconds))
            }
            if !reasons.isEmpty {
                problems.append(Problem(name: unit.projection, partition: unit.partition?.description, reason: reasons.joined(separator: "; ")))
            }
        }
        return Readiness(ready: problems.isEmpty, reason: problems.isEmpty ? nil : "\(problems.count) projection(s) not ready", problems: problems)
    }
}

/// The response body: `{"ready": false, "reason": "...", "projections": [{"name", "partition", "reason"}]}`.
extension Readiness: Encodable {
    enum CodingKeys: String, CodingKey { case ready, reason, projections }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.ready, forKey: .ready)
        try container.encode(self.reason, forKey: .reason)
        try container.encode(self.problems, forKey: .projections)
    }

    var json: String { JSONOutput.text(self) }
}

extension Readiness.Problem: Encodable {
    enum CodingKeys: String, CodingKey { case name, partition, reason }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.partition, forKey: .partition)
        try container.encode(self.reason, forKey: .reason)
    }
}
