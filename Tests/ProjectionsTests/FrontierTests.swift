@testable import Projections
import Testing

@Suite struct FrontierTests {
    @Test("a contiguous batch moves the frontier to its end")
    func contiguous() {
        let frontier = Frontier.advance(from: 10, visible: [11, 12, 13], dead: DeadPositions())
        #expect(frontier == Frontier(position: 13, skipped: [], unresolved: []))
    }

    @Test("an empty batch leaves the checkpoint")
    func empty() {
        #expect(Frontier.advance(from: 7, visible: [], dead: DeadPositions()).position == 7)
    }

    @Test("it stops before an unknown hole and reports every unknown hole below the highest visible")
    func stopsAtHole() {
        let frontier = Frontier.advance(from: 0, visible: [1, 2, 5, 6, 9], dead: DeadPositions())
        #expect(frontier.position == 2)
        #expect(frontier.unresolved == [3...4, 7...8])
        #expect(frontier.isBlocked)
    }

    @Test("known-dead positions are passed and reported for the audit")
    func passesDead() {
        var dead = DeadPositions()
        dead.insert(3...4, reason: .aborted)
        dead.insert(8...8, reason: .timeout)
        let frontier = Frontier.advance(from: 0, visible: [1, 2, 5, 6, 7, 9], dead: dead)
        #expect(frontier.position == 9)
        #expect(frontier.skipped == [DeadRange(positions: 3...4, reason: .aborted), DeadRange(positions: 8...8, reason: .timeout)])
        #expect(frontier.unresolved.isEmpty)
    }

    @Test("a hole partly dead: pass the dead part, stop at the rest")
    func partlyDead() {
        var dead = DeadPositions()
        dead.insert(3...3, reason: .aborted)
        let frontier = Frontier.advance(from: 2, visible: [6], dead: dead)
        #expect(frontier.position == 3)
        #expect(frontier.skipped == [DeadRange(positions: 3...3, reason: .aborted)])
        #expect(frontier.unresolved == [4...5])
    }

    @Test("dead ranges stay disjoint and sorted when they overlap")
    func deadRanges() {
        var dead = DeadPositions()
        dead.insert(10...20, reason: .aborted)
        dead.insert(5...12, reason: .timeout)
        dead.insert(18...25, reason: .timeout)
        #expect(dead.ranges.map(\.positions) == [5...9, 10...20, 21...25])
        #expect(dead.range(containing: 7)?.reason == .timeout)
        #expect(dead.range(containing: 15)?.reason == .aborted)
        #expect(dead.range(containing: 26) == nil)
        dead.forget(below: 21)
        #expect(dead.ranges.map(\.positions) == [21...25])
    }
}
