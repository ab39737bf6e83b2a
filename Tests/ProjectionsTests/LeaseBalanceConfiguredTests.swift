import Foundation
@testable import Projections
import Testing

/// Instances with different projection lists on one database: every unit gets an owner among
/// the instances that configure it, and units all of them configure are still shared evenly.
@Suite struct LeaseBalanceConfiguredTests {
    let a = UUID(uuidString: "00000000-0000-0000-0000-00000000000a")!
    let b = UUID(uuidString: "00000000-0000-0000-0000-00000000000b")!

    /// Runs every instance's plan in turn (each with its own units) until nothing moves.
    func settle(_ configured: [UUID: Set<String>], _ start: [String: LeaseBalance.Holder] = [:]) -> [String: LeaseBalance.Holder] {
        var holders = start
        let instances = configured.keys.sorted { $0.uuidString < $1.uuidString }
        for _ in 0..<10 {
            var moved = false
            for me in instances {
                let others = configured.filter { $0.key != me }
                let plan = LeaseBalance.plan(
                    me: me, instances: instances, units: Array(configured[me]!), configured: others, holders: holders)
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

    @Test("two instances with overlapping lists: every unit is held once, each only by an instance that configures it")
    func overlapping() {
        let holders = self.settle([self.a: ["p", "q"], self.b: ["q", "r"]])
        #expect(Set(holders.keys) == ["p", "q", "r"])
        #expect(holders["p"]?.instance == self.a)
        #expect(holders["r"]?.instance == self.b)
        #expect(holders["q"]?.instance != nil)
    }

    @Test("a unit only this instance configures is claimed even with its share of the shared units full")
    func soleUnitBeyondShare() {
        let holders: [String: LeaseBalance.Holder] = [
            "s1": .init(instance: self.a, valid: true), "s2": .init(instance: self.a, valid: true),
            "s3": .init(instance: self.b, valid: true),
        ]
        let plan = LeaseBalance.plan(
            me: self.a, instances: [self.a, self.b], units: ["s1", "s2", "s3", "only-a"], configured: [self.b: ["s1", "s2", "s3"]],
            holders: holders)
        #expect(plan == LeaseBalance(claim: ["only-a"], release: []))
    }

    @Test("a joining instance takes its share of the shared units only: the other keeps the units only it configures")
    func joinKeepsSoleUnits() {
        let units: Set<String> = ["s0", "s1", "s2", "s3", "x", "y"]
        let start = Dictionary(uniqueKeysWithValues: units.map { ($0, LeaseBalance.Holder(instance: self.a, valid: true)) })
        let holders = self.settle([self.a: units, self.b: ["s0", "s1", "s2", "s3"]], start)
        #expect(holders["x"]?.instance == self.a && holders["y"]?.instance == self.a)
        #expect(["s0", "s1", "s2", "s3"].filter { holders[$0]?.instance == self.b }.count == 2)
        #expect(Set(holders.keys) == units)
    }

    @Test("an instance that does not configure a unit never claims it, even alone with it free")
    func neverClaimsForeign() {
        let plan = LeaseBalance.plan(
            me: self.b, instances: [self.a, self.b], units: ["q"], configured: [self.a: ["p", "q"]], holders: [:])
        #expect(!plan.claim.contains("p"))
    }
}
