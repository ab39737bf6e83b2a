import Foundation

/// Which units an instance should claim and which it should let go, from one look at the
/// coordination tables: a pure decision, unit-tested without a server.
///
/// Every live instance has a share of the units: `units / instances`, plus one for the first
/// `units % instances` when ranked by how many units they hold now (then by id), so shares
/// differ by at most one, add up to all units, and a joining instance takes no unit its holder
/// may keep (one unit, two instances: it stays where it is).
/// Unit i (in name order) is *preferred* by instance i mod n: an instance claims its preferred
/// free units first and lets its non-preferred ones go first, so the layout settles on the
/// round robin (which spreads the partitions of one projection across instances) and stays put.
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
    ///   - units: every unit of the configuration.
    ///   - holders: per unit, its holder; a unit without an entry is free.
    ///   - stopping: true at shutdown: let everything go.
    public static func plan(
        me: UUID, instances: [UUID], units: [String], holders: [String: Holder], stopping: Bool = false
    ) -> LeaseBalance {
        let sortedUnits = units.sorted()
        let mine = sortedUnits.filter { holders[$0]?.instance == me && holders[$0]?.valid == true }
        if stopping { return LeaseBalance(claim: [], release: mine) }
        let live = Set(instances + [me]).sorted { $0.uuidString < $1.uuidString }
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
