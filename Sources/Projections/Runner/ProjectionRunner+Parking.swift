import EventStore
import Postgres
import Logging

/// `on_error: park` in a runner: the unit's parked aggregates, cached and reloaded only when the
/// checkpoint row's `parked_version` moved, and the dead letters of the events they hold back.
extension ProjectionRunner {
    /// The parked set as of `version` (read by the checkpoint lock in `tx`): the cached one, or
    /// read again in `tx` (under the lock, so that no command changes it meanwhile).
    func parkedSet(at version: Int64, in tx: Transaction) async throws -> ParkedAggregates {
        let cached = self.parkedCache.current
        if cached.version == version { return cached }
        let loaded = try await self.deadLetters.parked(self.name, version: version, on: tx)
        self.parkedCache.set(loaded)
        self.board.update(self.name) { $0.parkedAggregates = loaded.count }
        if loaded.count != cached.count, cached.version != nil {
            self.logger.info("Parked aggregates changed.", metadata: ["parked": "\(loaded.count)", "before": "\(cached.count)"])
        }
        return loaded
    }

    /// Appends the dead letters (status `parked`) of `events`, whose aggregates are parked.
    func appendParked(_ events: [PersistedEvent], parked: ParkedAggregates, to pipeline: inout Pipeline) {
        guard !events.isEmpty else { return }
        let (sql, parameters) = self.deadLetters.parkedBehindStatement(self.name, events, parked: parked)
        pipeline.append(sql, parameters)
        self.logger.debug(
            "Held events back behind their parked aggregates.",
            metadata: ["count": "\(events.count)", "first": "\(events[0].globalPosition)"])
    }
}
