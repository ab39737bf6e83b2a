import EventStore
import Foundation
import Logging
import Postgres

/// This instance's side of sharing the work: every `leaseTick`, on a connection borrowed from the
/// pool (control priority: ahead of batches), it heartbeats, renews its leases, looks at the live
/// instances and the units' holders, and claims or releases units as `LeaseBalance` says. Runners read the result from `Leases`.
///
/// On cancellation it waits until `runnersStopped` (every batch in flight committed or rolled back), then
/// releases every lease at once so that another instance takes over on its next tick.
struct LeaseCoordinator: Sendable {
    let units: [String]
    let leases: Leases
    let pool: ConnectionPool
    let options: RuntimeOptions
    let logger: Logger
    var store: AssignmentStore { AssignmentStore(schema: self.options.schema, instanceID: self.options.instanceID) }

    func run(runnersStopped: AsyncStream<Void>) async {
        var ticks = 0
        var mismatch = ConfigurationMismatch(units: [], others: [])
        let clock = ContinuousClock()
        let periodic = PeriodicTask(
            role: "Lease coordinator", interval: self.options.leaseTick, pool: self.pool, priority: .control,
            backoff: self.options.reconnectBackoff,
            logger: self.logger)
        await periodic.run(first: { try await self.store.ensureUnits(self.units, on: $0) }) { connection in
            try await self.tick(on: connection, started: clock.now, forgetSilent: ticks % 100 == 0, mismatch: &mismatch)
            ticks += 1
        }
        for await _ in runnersStopped {}
        self.leases.clear()
        // Shutdown: hand the units over now rather than after the lease (from an uncancelled task).
        let store = self.store
        let pool = self.pool
        let logger = self.logger
        await Task {
            do {
                try await pool.withConnection(priority: .control) { try await store.leave(on: $0) }
                logger.info("Released every lease.")
            } catch {
                logger.warning("Could not release the leases; they run out by themselves.", metadata: ["error": "\(error)"])
            }
        }.value
    }

    /// One look at the tables and the moves it calls for.
    /// `mismatch`: the last configuration difference warned about; a new one is logged once.
    func tick(
        on connection: PostgresConnection, started: ContinuousClock.Instant, forgetSilent: Bool, mismatch: inout ConfigurationMismatch
    ) async throws {
        let ttl = self.options.leaseTTL
        try await self.store.heartbeat(hostname: Self.hostname, pid: getpid(), units: self.units, on: connection)
        // Retired units (a successor took their views) need no runner: they leave the balance.
        let retired = try await self.store.retiredUnits(self.units, on: connection)
        let units = self.units.filter { !retired.contains($0) }
        var held = try await self.store.renew(self.units, ttl: ttl, on: connection)
        let live = try await self.store.liveInstances(ttl: ttl, on: connection)
        let instances = live.map(\.id)
        let others = live.filter { $0.id != self.options.instanceID }
        self.warnOnChange(ConfigurationMismatch(units: self.units, others: others), last: &mismatch)
        let holders = try await self.store.holders(units, on: connection)
        var configured: [UUID: Set<String>] = [:]
        for other in others { configured[other.id] = other.units }
        var plan = LeaseBalance.plan(
            me: self.options.instanceID, instances: instances, units: units, configured: configured, holders: holders)
        plan.release += held.keys.filter { retired.contains($0) }.sorted()
        if !plan.release.isEmpty {
            try await self.store.release(plan.release, on: connection)
            for unit in plan.release { held[unit] = nil }
            self.logger.info("Released units.", metadata: ["units": "\(plan.release)"])
        }
        if !plan.claim.isEmpty {
            let claimed = try await self.store.claim(plan.claim, ttl: ttl, on: connection)
            held.merge(claimed) { _, new in new }
            if !claimed.isEmpty {
                self.logger.info("Claimed units.", metadata: ["units": "\(claimed.keys.sorted())", "instances": "\(instances.count)"])
            }
        }
        if forgetSilent { try await self.store.forgetSilentInstances(olderThan: max(ttl * 6, .seconds(60)), on: connection) }
        // Counted from before the renewal was sent, and a little short of it: this instance stops
        // starting transactions before any other instance can claim what it holds.
        self.leases.hold(held, validUntil: started + ttl * 0.9)
    }

    /// Logs the live instances' differing projection lists when they change (and once when they agree again).
    func warnOnChange(_ now: ConfigurationMismatch, last: inout ConfigurationMismatch) {
        guard now != last else { return }
        if now.isEmpty {
            self.logger.info("Every live instance configures the same units again.")
        } else {
            for line in now.lines {
                self.logger.warning("Live instances configure different units: \(line).")
            }
        }
        last = now
    }

    static let hostname: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}
