import EventStore
import Foundation
import Postgres
@testable import Projections
import Testing

/// The shared window's decisions, without a server.
@Suite struct TailWindowTests {
    static func row(_ position: Int64, type: String = "Order", id: String? = nil, event: String = "OrderPlaced", hash: Int32? = nil) -> WindowRow {
        WindowRow(
            event: PersistedEvent(
                globalPosition: position, aggregateType: type, aggregateID: id ?? "o\(position)", aggregateVersion: 1, eventID: UUID(),
                eventType: event, eventVersion: 1, payload: Array("{}".utf8), metadata: nil, traceID: nil, correlationID: nil,
                causationID: nil, createdAt: PostgresTimestamp(Date(timeIntervalSince1970: 0))),
            partitionHash: hash)
    }

    static func rows(_ positions: ClosedRange<Int64>) -> [WindowRow] { positions.map { Self.row($0) } }

    let all = ReadScope(aggregateTypes: nil, eventTypes: nil, partition: nil)

    @Test("the first unit anchors the window at its checkpoint and reads the next chunk for everyone")
    func anchorsAndExtends() {
        var window = TailWindow(capacity: 100, chunk: 10)
        do { let decided = window.next(for: "a", at: 0); #expect(decided == .extend) }
        window.extended(after: 0, with: Self.rows(1...10), reachedHead: Self.rows(1...10).count < 10)
        do { let decided = window.next(for: "a", at: 0); #expect(decided == .serve) }
        do { let decided = window.next(for: "b", at: 4); #expect(decided == .serve) }
        #expect(window.members == ["a": 0, "b": 4])
        let batch = window.serve(after: 4, limit: 100, scope: self.all)
        #expect(batch?.positions == Array(5...10))
        #expect(batch?.full == true)  // the read was full: more may be visible
    }

    @Test("a unit behind the window or past its end reads its own range while others share it")
    func aloneOutside() {
        var window = TailWindow(capacity: 100, chunk: 10)
        _ = window.next(for: "a", at: 50)
        window.extended(after: 50, with: Self.rows(51...60), reachedHead: Self.rows(51...60).count < 10)
        do { let decided = window.next(for: "rebuild", at: 0); #expect(decided == .alone) }
        do { let decided = window.next(for: "ahead", at: 70); #expect(decided == .alone) }
        #expect(window.serve(after: 0, limit: 10, scope: self.all) == nil)
        #expect(window.members == ["a": 50])
    }

    @Test("a window nobody takes from any more moves to the next unit that asks")
    func reanchors() {
        var window = TailWindow(capacity: 100, chunk: 10)
        _ = window.next(for: "a", at: 50)
        window.extended(after: 50, with: Self.rows(51...60), reachedHead: Self.rows(51...60).count < 10)
        window.leave("a")
        do { let decided = window.next(for: "b", at: 0); #expect(decided == .extend) }
        #expect(window.start == 0 && window.end == 0 && window.rows.isEmpty)
    }

    @Test("each unit takes only its scope, with every position for the frontier, at most its limit of events")
    func scopes() {
        var window = TailWindow(capacity: 100, chunk: 6)
        _ = window.next(for: "a", at: 0)
        window.extended(
            after: 0,
            with: [
                Self.row(1, type: "Order"), Self.row(2, type: "Customer"), Self.row(3, type: "Order", event: "OrderShipped"),
                Self.row(4, type: "Order"), Self.row(5, type: "Customer"), Self.row(6, type: "Order"),
            ], reachedHead: true)
        #expect(window.headReached)
        let orders = ReadScope(aggregateTypes: ["Order"], eventTypes: ["OrderPlaced"], partition: nil)
        let batch = window.serve(after: 0, limit: 2, scope: orders)
        #expect(batch?.events.map(\.globalPosition) == [1, 4])
        #expect(batch?.positions == [1, 2, 3, 4, 5])  // ends just before the third event in scope
        #expect(batch?.full == true)
        let rest = window.serve(after: 5, limit: 2, scope: orders)
        #expect(rest?.events.map(\.globalPosition) == [6])
        #expect(rest?.full == false)  // the head was reached
    }

    @Test("partitions take their share by the row's hash")
    func partitions() {
        var window = TailWindow(capacity: 100, chunk: 4)
        _ = window.next(for: "p", at: 0)
        window.extended(after: 0, with: [Self.row(1, hash: 7), Self.row(2, hash: 8), Self.row(3, hash: 9), Self.row(4)], reachedHead: ([Self.row(1, hash: 7), Self.row(2, hash: 8), Self.row(3, hash: 9), Self.row(4)]).count < 4)
        let second = ReadScope(aggregateTypes: nil, eventTypes: nil, partition: WorkUnit.Partition(index: 1, count: 2))
        #expect(window.serve(after: 0, limit: 10, scope: second)?.events.map(\.globalPosition) == [1, 3])
    }

    @Test("holes stay holes (a gap for each unit to resolve) until a late row is filled in")
    func holesAndFill() {
        var window = TailWindow(capacity: 100, chunk: 10)
        _ = window.next(for: "a", at: 0)
        window.extended(after: 0, with: [Self.row(1), Self.row(2), Self.row(5)], reachedHead: ([Self.row(1), Self.row(2), Self.row(5)]).count < 10)
        #expect(window.serve(after: 0, limit: 10, scope: self.all)?.positions == [1, 2, 5])
        window.fill([Self.row(4), Self.row(2), Self.row(9)])  // 2 is held, 9 is past the end
        #expect(window.serve(after: 0, limit: 10, scope: self.all)?.positions == [1, 2, 4, 5])
        #expect(window.end == 5)
    }

    @Test("the window never holds more than its capacity: it drops what every member passed, else the leader waits")
    func capacity() {
        var window = TailWindow(capacity: 20, chunk: 10)
        _ = window.next(for: "fast", at: 0)
        _ = window.next(for: "slow", at: 0)
        window.extended(after: 0, with: Self.rows(1...10), reachedHead: Self.rows(1...10).count < 10)
        do { let decided = window.next(for: "fast", at: 10); #expect(decided == .extend) }
        window.extended(after: 10, with: Self.rows(11...20), reachedHead: Self.rows(11...20).count < 10)
        #expect(window.next(for: "fast", at: 20) == .waitForRoom)  // "slow" still needs 1...20
        #expect(!window.wantsPrefetch)
        window.moved("slow", to: 12)
        #expect(window.start == 12 && window.rows.count == 8)  // what both passed is dropped at once
        do { let decided = window.next(for: "fast", at: 20); #expect(decided == .extend) }
        window.extended(after: 20, with: Self.rows(21...30), reachedHead: Self.rows(21...30).count < 10)
        #expect(window.rows.count <= window.capacity)
    }

    @Test("the slowest member can be left behind: it then reads alone")
    func dropSlowest() {
        var window = TailWindow(capacity: 10, chunk: 10)
        _ = window.next(for: "fast", at: 0)
        _ = window.next(for: "stuck", at: 0)
        window.extended(after: 0, with: Self.rows(1...10), reachedHead: Self.rows(1...10).count < 10)
        do { let decided = window.next(for: "fast", at: 10); #expect(decided == .waitForRoom) }
        #expect(window.dropSlowest() == "stuck")
        do { let decided = window.next(for: "fast", at: 10); #expect(decided == .extend) }
        do { let decided = window.next(for: "stuck", at: 0); #expect(decided == .alone) }
    }

    @Test("a read that no longer starts at the end is dropped; one shorter than its limit reached the head")
    func staleExtension() {
        var window = TailWindow(capacity: 100, chunk: 10)
        _ = window.next(for: "a", at: 0)
        window.extended(after: 0, with: Self.rows(1...3), reachedHead: Self.rows(1...3).count < 10)
        #expect(window.headReached)
        window.extended(after: 0, with: Self.rows(1...10), reachedHead: Self.rows(1...10).count < 10)
        #expect(window.end == 3)
        #expect(window.serve(after: 3, limit: 10, scope: self.all)?.full == false)
    }

    @Test("units caught up at the end hold no rows: the window empties as the last one arrives")
    func idleHoldsNothing() {
        var window = TailWindow(capacity: 100, chunk: 10)
        _ = window.next(for: "a", at: 0)
        _ = window.next(for: "b", at: 0)
        window.extended(after: 0, with: Self.rows(1...10), reachedHead: true)
        window.moved("a", to: 10)
        #expect(window.rows.count == 10)
        window.moved("b", to: 10)
        #expect(window.rows.isEmpty && window.start == 10 && window.end == 10)
        do { let decided = window.next(for: "a", at: 10); #expect(decided == .extend) }
    }

    @Test("prefetch when the leader is within a chunk of the end and more may be visible")
    func prefetch() {
        var window = TailWindow(capacity: 100, chunk: 10)
        _ = window.next(for: "a", at: 0)
        window.extended(after: 0, with: Self.rows(1...10), reachedHead: Self.rows(1...10).count < 10)
        #expect(window.wantsPrefetch)
        window.extended(after: 10, with: Self.rows(11...30), reachedHead: Self.rows(11...30).count < 20)
        window.moved("a", to: 5)
        #expect(!window.wantsPrefetch)  // 25 rows ahead of the leader
        window.moved("a", to: 25)
        #expect(window.wantsPrefetch)
    }
}

/// The rounds of one batch transaction, without a server.
@Suite struct BatchRoundsTests {
    static func plan(maxBatches: Int, readAhead: Bool = true) -> RunnerStateMachine.BatchPlan {
        .init(maxBatches: maxBatches, batchSize: 100, readAhead: readAhead, dead: DeadPositions())
    }

    @Test("a unit on its own reads round 1 in the transaction and later rounds from the read-ahead")
    func alone() {
        let start = ContinuousClock.now
        var rounds = BatchRounds(plan: Self.plan(maxBatches: 3), budget: .seconds(1), sharing: false, started: start)
        #expect(rounds.opensReader(holdingReadAhead: false))
        #expect(rounds.source(after: 10, readAheadAfter: nil) == .read)
        #expect(rounds.source(after: 10, readAheadAfter: 10) == .readAhead)
        #expect(rounds.source(after: 10, readAheadAfter: 9) == .read)
        #expect(rounds.readsAhead(readerUsable: true, full: true, blocked: false))
        #expect(!rounds.readsAhead(readerUsable: true, full: false, blocked: false))
        do { let decided = rounds.another(readAheadReady: true, windowHasRows: false, full: true, blocked: false, now: start); #expect(decided) }
        do { let decided = rounds.another(readAheadReady: true, windowHasRows: false, full: true, blocked: false, now: start); #expect(decided) }
        #expect(rounds.round == 3)
        #expect(!rounds.readsAhead(readerUsable: true, full: true, blocked: false))  // the last round
        do { let decided = rounds.another(readAheadReady: true, windowHasRows: false, full: true, blocked: false, now: start); #expect(!decided) }
    }

    @Test("a sharing unit opens no reader and goes on while the window has rows after a full batch")
    func sharing() {
        let start = ContinuousClock.now
        var rounds = BatchRounds(plan: Self.plan(maxBatches: 8), budget: .milliseconds(500), sharing: true, started: start)
        #expect(!rounds.opensReader(holdingReadAhead: false))
        #expect(rounds.source(after: 10, readAheadAfter: nil) == .window)
        do { let decided = rounds.another(readAheadReady: false, windowHasRows: true, full: false, blocked: false, now: start); #expect(!decided) }
        do { let decided = rounds.another(readAheadReady: false, windowHasRows: true, full: true, blocked: true, now: start); #expect(!decided) }
        do { let decided = rounds.another(readAheadReady: false, windowHasRows: false, full: true, blocked: false, now: start); #expect(!decided) }
        do { let decided = rounds.another(readAheadReady: false, windowHasRows: true, full: true, blocked: false, now: start); #expect(decided) }
        do { let decided = rounds.another(readAheadReady: false, windowHasRows: true, full: true, blocked: false, now: start + .seconds(1)); #expect(!decided) }
    }
}
