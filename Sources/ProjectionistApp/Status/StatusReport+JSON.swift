import Foundation
import Projections

/// `status --json` and `/status`: `{"head": N, "projections": [row, …]}`.
extension StatusReport: Encodable {
    enum CodingKeys: String, CodingKey { case head, projections }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.head, forKey: .head)
        try container.encode(self.rows, forKey: .projections)
    }

    public var json: String { JSONOutput.text(self) }
}

extension StatusReport.Row: Encodable {
    enum CodingKeys: String, CodingKey {
        case name, partition, position, lag, state, error, owner, successor
        case lagSeconds = "lag_seconds", slowBatchSeconds = "slow_batch_seconds", ownerHost = "owner_host"
        case leaseExpiresSeconds = "lease_expires_seconds", fencingToken = "fencing_token"
        case eventsPerSecond = "events_per_second", etaSeconds = "eta_seconds", configuredLive = "configured_live"
        case parkedAggregates = "parked_aggregates"
    }

    /// Every key, `null` where there is no value.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.partition, forKey: .partition)
        try container.encode(self.position, forKey: .position)
        try container.encode(self.lag, forKey: .lag)
        try container.encode(JSONOutput.tenths(self.lagSeconds), forKey: .lagSeconds)
        try container.encode(self.state, forKey: .state)
        try container.encode(self.error, forKey: .error)
        try container.encode(self.slowBatchSeconds, forKey: .slowBatchSeconds)
        try container.encode(self.owner?.instance, forKey: .owner)
        try container.encode(self.owner?.hostDescription, forKey: .ownerHost)
        let lease = self.owner?.leaseExpiresIn.map { JSONOutput.tenths(Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18) }
        try container.encode(lease, forKey: .leaseExpiresSeconds)
        try container.encode(self.owner?.token, forKey: .fencingToken)
        try container.encode(self.successor, forKey: .successor)
        try container.encode(self.eventsPerSecond.map(JSONOutput.tenths), forKey: .eventsPerSecond)
        try container.encode(self.etaSeconds, forKey: .etaSeconds)
        try container.encode(self.configuredLive, forKey: .configuredLive)
        try container.encode(self.parkedAggregates, forKey: .parkedAggregates)
    }
}
