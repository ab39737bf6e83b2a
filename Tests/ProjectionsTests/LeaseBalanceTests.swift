import Foundation
@testable import Projections
import Testing

@Suite struct LeaseBalanceTests {
    let a = UUID(uuidString: "00000000-0000-0000-0000-00000000000a")!
    let b = UUID(uuidString: "00000000-0000-0000-0000-00000000000b")!
    let c = UUID(uuidString: "00000000-0000-0000-0000-00000000000c")!
    let units = ["p#0/4", "p#1/4", "p#2/4", "p#3/4", "q"]

    func held(_ owner: UUID, _ units: [String], valid: Bool = true) -> [String: LeaseBalance.Holder] {
        Dictionary(uniqueKeysWithValues: units.map { ($0, LeaseBalance.Holder(instance: owner, valid: valid)) })
    }

    /// Runs every instance's plan in turn (claims and releases applied at once) until nothing moves.
    func settle(_ instances: [UUID], _ start: [String: LeaseBalance.Holder] = [:], rounds: Int = 10) -> [String: LeaseBalance.Holder] {
        var holders = start
        for _ in 0..<rounds {
            var moved = false
            for me in instances {
                let plan = LeaseBalance.plan(me: me, instances: instances, units: self.units, holders: holders)
                for unit in plan.release { holders[unit] = nil; moved = true }
                for unit in plan.claim where holders[unit]?.valid != true || holders[unit]?.instance == nil {
                    holders[unit] = LeaseBalance.Holder(instance: me, valid: true)
                    moved = true
                }
            }
            if !moved { break }
        }
        return holders
    }

    func counts(_ holders: [String: LeaseBalance.Holder], _ instances: [UUID]) -> [Int] {
        instances.map { me in holders.values.filter { $0.instance == me && $0.valid }.count }
    }

    @Test("alone, an instance claims every unit")
    func alone() {
        let plan = LeaseBalance.plan(me: self.a, instances: [self.a], units: self.units, holders: [:])
        #expect(plan.claim == self.units.sorted())
        #expect(plan.release.isEmpty)
    }

    @Test("three instances settle on shares of 2, 2 and 1 with every unit held once, partitions spread round robin")
    func threeShare() {
        let holders = self.settle([self.a, self.b, self.c])
        #expect(self.counts(holders, [self.a, self.b, self.c]) == [2, 2, 1])
        #expect(holders.count == self.units.count)
        // Sorted units p#0..p#3, q go to a, b, c, a, b: the four partitions of p on three instances.
        #expect(holders["p#0/4"]?.instance == self.a && holders["p#3/4"]?.instance == self.a)
        #expect(holders["p#1/4"]?.instance == self.b && holders["q"]?.instance == self.b)
        #expect(holders["p#2/4"]?.instance == self.c)
    }

    @Test("a joining instance gets its share: the others release their extras, non-preferred ones first")
    func join() {
        let before = self.held(self.a, self.units)
        let release = LeaseBalance.plan(me: self.a, instances: [self.a, self.b], units: self.units, holders: before)
        #expect(release.release.count == 2)
        #expect(release.claim.isEmpty)
        // a prefers units 0, 2, 4 (p#0, p#2, q) of five with two instances: it lets p#1 and p#3 go.
        #expect(release.release == ["p#1/4", "p#3/4"])
        let after = self.settle([self.a, self.b], before)
        #expect(self.counts(after, [self.a, self.b]) == [3, 2])
    }

    @Test("an expired lease is free to claim; a valid one of a live instance is not")
    func expired() {
        var holders = self.held(self.b, ["p#0/4", "p#1/4"], valid: false)
        holders.merge(self.held(self.c, ["p#2/4"])) { $1 }
        let plan = LeaseBalance.plan(me: self.a, instances: [self.a, self.c], units: self.units, holders: holders)
        // Five among two: the extra one goes to c, which holds a unit already; a's share is 2,
        // taken from the free ones (p#2 is c's).
        #expect(plan.claim.count == 2)
        #expect(!plan.claim.contains("p#2/4"))
    }

    @Test("a dead instance's units are claimed once their leases run out, and shares stay within one")
    func failover() {
        let start = self.settle([self.a, self.b, self.c])
        var expired = start
        for (unit, holder) in start where holder.instance == self.c { expired[unit] = LeaseBalance.Holder(instance: self.c, valid: false) }
        let after = self.settle([self.a, self.b], expired)
        #expect(self.counts(after, [self.a, self.b]) == [3, 2])
        #expect(after.values.allSatisfy { $0.valid && $0.instance != self.c })
    }

    @Test("a joining instance takes no unit its holder may keep: one unit stays put, whichever id sorts first")
    func noNeedlessMove() {
        for (owner, joiner) in [(self.a, self.b), (self.b, self.a)] {
            let holders = ["q": LeaseBalance.Holder(instance: owner, valid: true)]
            #expect(LeaseBalance.plan(me: owner, instances: [self.a, self.b], units: ["q"], holders: holders) == LeaseBalance())
            #expect(LeaseBalance.plan(me: joiner, instances: [self.a, self.b], units: ["q"], holders: holders) == LeaseBalance())
        }
    }

    @Test("stopping releases everything held and claims nothing")
    func stopping() {
        let holders = self.held(self.a, ["q", "p#0/4"])
        let plan = LeaseBalance.plan(me: self.a, instances: [self.a, self.b], units: self.units, holders: holders, stopping: true)
        #expect(plan.release == ["p#0/4", "q"])
        #expect(plan.claim.isEmpty)
    }

    @Test("a settled layout stays put: no instance moves anything")
    func stable() {
        let holders = self.settle([self.a, self.b, self.c])
        for me in [self.a, self.b, self.c] {
            #expect(LeaseBalance.plan(me: me, instances: [self.c, self.a, self.b], units: self.units, holders: holders) == LeaseBalance())
        }
    }
}
