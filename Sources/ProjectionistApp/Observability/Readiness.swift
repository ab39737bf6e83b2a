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

    /// The response body: `{"ready": false, "reason": "...", "projections": [{"name", "partition", "reason"}]}`.
    var json: String {
        let object: [String: Any] = [
            "ready": self.ready, "reason": self.reason ?? NSNull(),
            "projections": self.problems.map { ["name": $0.name, "partition": $0.partition ?? NSNull(), "reason": $0.reason] as [String: Any] },
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
