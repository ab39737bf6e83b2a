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

    /// `retry_parked`: at most every `ParkedRetryTimer.interval(base)`, while something is
    /// parked, retries the aggregates whose backoff has passed (`DeadLetterRetry.dueAggregates`)
    /// on a borrowed connection, between batches. What still fails stays parked with its
    /// attempts raised; a failure of the retry itself is logged and tried at the next check.
    func retryParkedIfDue(_ session: inout Session, now: ContinuousClock.Instant = .now) async {
        guard let base = self.projection.retryParked, !self.parkedCache.current.isEmpty else { return }
        if let next = session.nextParkedRetry, now < next { return }
        session.nextParkedRetry = now + ParkedRetryTimer.interval(base)
        let schema = self.options.schema
        do {
            let outcome = try await self.borrow(preparing: true) { connection -> DeadLetterRetry.Outcome? in
                // At most `ParkedRetryTimer.perCheck` per check: many failing aggregates must not
                // hold the unit's batches back for long.
                let due = Array(
                    try await DeadLetterRetry.dueAggregates(unit: self.name, base: base, schema: schema, on: connection)
                        .prefix(ParkedRetryTimer.perCheck))
                guard !due.isEmpty else { return nil }
                return try await self.busy {
                    try await DeadLetterRetry.retry(
                        projection: self.projection, unit: self.name, aggregates: due, schema: schema, decryptor: self.reader.decryptor,
                        on: connection)
                }
            }
            guard let outcome else { return }
            for result in outcome.results {
                if let failure = result.failure {
                    self.logger.warning(
                        "Parked aggregate retried (retry_parked); it still fails and stays parked.",
                        metadata: [
                            "aggregate": "\(result.aggregate)", "position": "\(failure.position)", "attempts": "\(failure.attempts)",
                            "error": "\(failure.error)",
                        ])
                } else {
                    self.logger.notice(
                        "Parked aggregate retried (retry_parked): applied, no longer parked.",
                        metadata: ["aggregate": "\(result.aggregate)", "events": "\(result.applied.count)"])
                }
            }
        } catch {
            if Task.isCancelled { return }  // shutdown: the retry rolled back, nothing to report
            self.logger.warning("Retrying parked aggregates failed; trying again later.", metadata: ["error": "\(error)"])
        }
    }
}

/// How often a runner looks for parked aggregates due for `retry_parked`: the base delay, but
/// at least a second and at most a minute (the backoff itself is per aggregate, in its rows).
enum ParkedRetryTimer {
    static func interval(_ base: Duration) -> Duration {
        min(max(base, .seconds(1)), .seconds(60))
    }

    /// Aggregates retried at most per check; the rest wait for the next one.
    static let perCheck = 20
}
