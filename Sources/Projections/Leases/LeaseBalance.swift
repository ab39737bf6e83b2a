import Foundation

/// Which units an instance should claim and which it should let go, from one look at the
/// coordination tables: a pure decision, unit-tested without a server.
///
/// The units are shared among the live instances that configure them: units configured by the
/// same set of instances form a group, and each group is shared on its own. A unit only this
/// instance configures is a group of one and always claimed here, so instances with different
/// projection lists never leave a unit without an owner. An instance whose configured units are
/// unknown (a row without `units`) counts as configuring every unit of this one.
///
/// Within a group every instance has a share of its units: `units / instances`, plus one for the
/// first `units % instances` when ranked by how many of the group's units they hold now (then by
/// id), so shares differ by at most one, add up to all units, and a joining instance takes no unit
/// its holder may keep (one unit, two instances: it stays where it is).
/// Unit i (in name order) of a group is *preferred* by instance i mod n: an instance claims its
/// preferred free units first and lets its non-preferred ones go first, so the layout settles on
/// the round robin (which spreads the partitions of one projection across instances) and stays put.
public struct LeaseBalance: Sendable, Equatable {
    public var claim: [String] = []
    public var release: [String] = []

    /// Who holds a unit now, as the assignments table says.
    public struct Holder: Sendable, Equatable {
        public var instance: UUID?
        /// The lease has not expired (server clock).
        public var valid: Bool
        public init(instance: UUID?, valid: Bool) {
            self.instance = instance
            self.valid = valid
        }
    }

    /// - Parameters:
    ///   - me: this instance.
    ///   - instances: the live instances (heartbeat within the lease); `me` counts even if missing.
    ///   - units: every unit of this instance's configuration.
    ///   - configured: per other live instance, the units it configures; an instance without an
    ///     entry counts as configuring all of `units`.
    ///   - holders: per unit, its holder; a unit without an entry is free.
    ///   - stopping: true at shutdown: let everything go.
    public static func plan(
        me: UUID, instances: [UUID], units: [String], configured: [UUID: Set<String>] = [:],
        holders: [String: Holder], stopping: Bool = false
    ) -> LeaseBalance {
        let sortedUnits = units.sorted()
        let mine = sortedUnits.filter { holders[$0]?.instance == me && holders[$0]?.valid == true }
        if stopping { return LeaseBalance(claim: [], release: mine) }
        let live = Set(instances + [me]).sorted { $0.uuidString < $1.uuidString }
        var groups: [[UUID]: [String]] = [:]
        for unit in sortedUnits {
            let sharers = live.filter { $0 == me || configured[$0].map { $0.contains(unit) } ?? true }
            groups[sharers, default: []].append(unit)
        }
        var plan = LeaseBalance()
        for (sharers, group) in groups.sorted(by: { $0.value[0] < $1.value[0] }) {
            let part = Self.share(me: me, live: sharers, units: group, holders: holders)
            plan.claim += part.claim
            plan.release += part.release
        }
        return plan
    }

    /// The even split of `units` (sorted) among `live` (sorted, containing `me`).
    private static func share(me: UUID, live: [UUID], units sortedUnits: [String], holders: [String: Holder]) -> LeaseBalance {
        let mine = sortedUnits.filter { holders[$0]?.instance == me && holders[$0]?.valid == true }
        let index = live.firstIndex(of: me)!
        var held: [UUID: Int] = [:]
        for unit in sortedUnits {
            if let holder = holders[unit], holder.valid, let instance = holder.instance { held[instance, default: 0] += 1 }
        }
        let ranked = live.sorted { (held[$0] ?? 0, $1.uuidString) > (held[$1] ?? 0, $0.uuidString) }
        let share = sortedUnits.count / live.count + (ranked.firstIndex(of: me)! < sortedUnits.count % live.count ? 1 : 0)
        let preferred = Set(sortedUnits.enumerated().filter { $0.offset % live.count == index }.map(\.element))
        var plan = LeaseBalance()
        if mine.count > share {
            let order = mine.filter { !preferred.contains($0) } + mine.filter { preferred.contains($0) }
            plan.release = Array(order.prefix(mine.count - share))
        } else if mine.count < share {
            let free = sortedUnits.filter { unit in
                guard let holder = holders[unit], holder.valid, holder.instance != nil else { return true }
                return false
            }
            let order = free.filter { preferred.contains($0) } + free.filter { !preferred.contains($0) }
            plan.claim = Array(order.prefix(share - mine.count))
        }
        return plan
    }
}
