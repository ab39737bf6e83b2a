import EventStore
import Testing

/// Which ranges `migrate` creates: the head's and the two after it, less those covered.
@Suite struct PartitionPlanTests {
    func ranges(_ bounds: [(Int64, Int64)]) -> [PartitionPlan.Existing] {
        bounds.map { PartitionPlan.Existing(name: "events_\($0.0)", from: $0.0, to: $0.1) }
    }

    @Test("an empty log with nothing yet: ranges 0, 1 and 2")
    func empty() throws {
        let plan = try PartitionPlan(head: 0, size: 10, existing: [])
        #expect(plan.missing.map(\.first) == [1, 11, 21])
        #expect(plan.missing.map(\.last) == [10, 20, 30])
    }

    @Test("the head in range 2 of 4 made up front: ranges 4 only (3 exists)")
    func ahead() throws {
        let existing = ranges([(1, 11), (11, 21), (21, 31), (31, 41)])
        #expect(try PartitionPlan(head: 25, size: 10, existing: existing).missing.map(\.index) == [4])
        #expect(try PartitionPlan(head: 30, size: 10, existing: existing).missing.map(\.index) == [4])
        #expect(try PartitionPlan(head: 31, size: 10, existing: existing).missing.map(\.index) == [4, 5])
        #expect(try PartitionPlan(head: 20, size: 10, existing: existing).missing.isEmpty)
    }

    @Test("a sequence moved far ahead: the ranges around it, not every one between")
    func jump() throws {
        let plan = try PartitionPlan(head: 95, size: 10, existing: ranges([(1, 11)]))
        #expect(plan.missing.map(\.index) == [9, 10, 11])
        #expect(plan.missing[0].partitionName(of: "events") == "events_p0000000091_p0000000100")
    }

    @Test("a wider partition (another tool's, MAXVALUE) covers; ranges of another size are a mismatch naming the partition")
    func mismatch() throws {
        #expect(try PartitionPlan(head: 5, size: 10, existing: [PartitionPlan.Existing(name: "all", from: 1, to: nil)]).missing.isEmpty)
        let error = #expect(throws: PartitionPlan.Mismatch.self) {
            try PartitionPlan(head: 0, size: 100, existing: ranges([(1, 11), (11, 21)]))
        }
        #expect(error?.partition.name == "events_1")
        #expect(error?.range.index == 0)
    }
}
