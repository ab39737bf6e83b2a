@testable import Projections
import Testing

/// The pool's decisions, without a server and without sleeping: time is an argument.
@Suite struct PoolStateMachineTests {
    let t0 = ContinuousClock.now

    func machine(max: Int = 2, idle: Duration = .seconds(10)) -> PoolStateMachine {
        PoolStateMachine(
            configuration: .init(
                maxConnections: max, idleTimeout: idle, backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(30), jitter: 1...1)))
    }

    /// A machine with `count` connections open and idle (ids 0..<count).
    func withIdle(_ count: Int, max: Int) -> PoolStateMachine {
        var machine = self.machine(max: max)
        for id in 0..<count {
            #expect(machine.borrow(100 + id, priority: .batch, now: self.t0).open == 1)
        }
        for id in 0..<count {
            let actions = machine.opened(id, now: self.t0)
            #expect(actions.serve == [.init(waiter: 100 + id, connection: id)])
        }
        for id in 0..<count { _ = machine.released(id, broken: false, now: self.t0) }
        #expect(machine.idle.count == count)
        return machine
    }

    @Test("a borrow with nothing idle opens one; the opened connection goes to the waiter")
    func opensForAWaiter() {
        var machine = self.machine()
        let actions = machine.borrow(1, priority: .batch, now: self.t0)
        #expect(actions.open == 1 && actions.serve.isEmpty)
        #expect(machine.total == 1)
        #expect(machine.opened(7, now: self.t0).serve == [.init(waiter: 1, connection: 7)])
        #expect(machine.leased == [7])
    }

    @Test("the budget is never exceeded, counting connections being opened")
    func budget() {
        var machine = self.machine(max: 3)
        var opens = 0
        for waiter in 0..<10 { opens += machine.borrow(waiter, priority: .batch, now: self.t0).open }
        #expect(opens == 3)
        #expect(machine.total == 3 && machine.waiting == 10)
        // Opened and returned over and over: never a fourth.
        for id in 0..<3 { _ = machine.opened(id, now: self.t0) }
        for round in 0..<20 {
            let id = round % 3
            let actions = machine.released(id, broken: round % 4 == 0, now: self.t0)
            opens += actions.open
            if actions.open > 0 { _ = machine.opened(100 + round, now: self.t0) }
            #expect(machine.total <= 3)
        }
    }

    @Test("an adopted connection serves the first waiter instead of an open; with the budget full it is closed")
    func adopted() {
        var machine = self.machine(max: 2)
        let first = machine.adopted(5, now: self.t0)
        #expect(first.close.isEmpty && first.open == 0 && machine.idle.map(\.id) == [5])
        let borrowed = machine.borrow(1, priority: .batch, now: self.t0)
        #expect(borrowed.serve == [.init(waiter: 1, connection: 5)] && borrowed.open == 0, "the adopted one, no open")
        // Two waiters more: one open fills the budget (5 leased + 1 opening); a late adoptee is closed.
        #expect(machine.borrow(2, priority: .batch, now: self.t0).open == 1)
        #expect(machine.borrow(3, priority: .batch, now: self.t0).open == 0)
        let late = machine.adopted(6, now: self.t0)
        #expect(late.close == [6] && late.serve.isEmpty)
        #expect(machine.total == 3, "the late one counts until it is closed")
        _ = machine.closed(now: self.t0)
        #expect(machine.total == 2)
    }

    @Test("within a priority strictly first come, first served: a returned connection goes to the first waiter, not back to its returner")
    func fairness() {
        var machine = self.withIdle(1, max: 1)
        #expect(machine.borrow(1, priority: .batch, now: self.t0).serve == [.init(waiter: 1, connection: 0)])
        _ = machine.borrow(2, priority: .batch, now: self.t0)
        _ = machine.borrow(3, priority: .batch, now: self.t0)
        // Waiter 1 returns and asks again at once: 2 and 3 come first.
        #expect(machine.released(0, broken: false, now: self.t0).serve == [.init(waiter: 2, connection: 0)])
        #expect(machine.borrow(1, priority: .batch, now: self.t0).serve.isEmpty)
        #expect(machine.released(0, broken: false, now: self.t0).serve == [.init(waiter: 3, connection: 0)])
        #expect(machine.released(0, broken: false, now: self.t0).serve == [.init(waiter: 1, connection: 0)])
    }

    @Test("an idle connection is not taken by a newcomer while others wait")
    func noQueueJumping() {
        var machine = self.withIdle(1, max: 1)
        _ = machine.borrow(1, priority: .batch, now: self.t0)
        _ = machine.borrow(2, priority: .batch, now: self.t0)
        #expect(machine.tryBorrow(now: self.t0) == .none)
    }

    @Test("control waiters are served before batch waiters, whenever they came")
    func priority() {
        var machine = self.withIdle(1, max: 1)
        _ = machine.borrow(1, priority: .batch, now: self.t0)  // holds it
        _ = machine.borrow(2, priority: .batch, now: self.t0)
        _ = machine.borrow(3, priority: .control, now: self.t0)
        _ = machine.borrow(4, priority: .control, now: self.t0)
        #expect(machine.released(0, broken: false, now: self.t0).serve.map(\.waiter) == [3])
        #expect(machine.released(0, broken: false, now: self.t0).serve.map(\.waiter) == [4])
        #expect(machine.released(0, broken: false, now: self.t0).serve.map(\.waiter) == [2])
    }

    @Test("a refused open backs off; meanwhile a returned connection serves the waiter, and a log line counts the refusals")
    func refusal() {
        var machine = self.withIdle(1, max: 4)
        _ = machine.borrow(1, priority: .batch, now: self.t0)  // takes the idle one
        let opened = machine.borrow(2, priority: .batch, now: self.t0)
        #expect(opened.open == 1)
        let refused = machine.openFailed(.refused, now: self.t0)
        #expect(refused.retryAt == self.t0 + .milliseconds(100))
        #expect(refused.logRefusals == 1)
        #expect(refused.fail.isEmpty && refused.open == 0)
        // Still backing off: a new waiter does not open.
        #expect(machine.borrow(3, priority: .batch, now: self.t0 + .milliseconds(50)).open == 0)
        // The borrowed connection comes back: waiter 2 gets it, 3 keeps waiting.
        #expect(machine.released(0, broken: false, now: self.t0 + .milliseconds(60)).serve == [.init(waiter: 2, connection: 0)])
        // The backoff ends: one probe, not one per waiter.
        #expect(machine.retryDue(now: self.t0 + .milliseconds(100)).open == 1)
        let again = machine.openFailed(.refused, now: self.t0 + .milliseconds(110))
        #expect(again.retryAt == self.t0 + .milliseconds(310))  // doubled
        #expect(again.logRefusals == nil)  // within 30 s of the last line
        #expect(machine.retryDue(now: self.t0 + .milliseconds(310)).open == 1)
        #expect(machine.opened(5, now: self.t0 + .milliseconds(320)).serve == [.init(waiter: 3, connection: 5)])
        #expect(machine.backingOffUntil == nil)
    }

    @Test("with no connection at all and every open refused, the waiter keeps waiting; cancelling removes it")
    func refusedWithNothingOpen() {
        var machine = self.machine(max: 3)
        #expect(machine.borrow(1, priority: .batch, now: self.t0).open == 1)
        var now = self.t0
        for _ in 0..<5 {
            let failed = machine.openFailed(.refused, now: now)
            #expect(failed.fail.isEmpty)
            now = failed.retryAt ?? now
            #expect(machine.retryDue(now: now).open == 1)
        }
        #expect(machine.waiting == 1)
        let cancelled = machine.cancel(1)
        #expect(cancelled)
        #expect(machine.waiting == 0)
        let again = machine.cancel(1)
        #expect(!again)
        // The open in flight succeeds after all: it goes idle, nobody is owed it.
        #expect(machine.opened(9, now: now).serve.isEmpty)
        #expect(machine.idle.map(\.id) == [9])
    }

    @Test("an open that fails otherwise (server down) fails the first waiter with the error")
    func otherFailure() {
        var machine = self.machine(max: 3)
        _ = machine.borrow(1, priority: .batch, now: self.t0)
        let failed = machine.openFailed(.other, now: self.t0)
        #expect(failed.fail == [1])
        #expect(failed.logRefusals == nil)
        #expect(machine.waiting == 0)
    }

    @Test("a broken connection returned is closed, and once closed a waiter gets a fresh one opened (never both open at once)")
    func brokenReturned() {
        var machine = self.withIdle(1, max: 1)
        _ = machine.borrow(1, priority: .batch, now: self.t0)
        _ = machine.borrow(2, priority: .batch, now: self.t0)
        let actions = machine.released(0, broken: true, now: self.t0)
        #expect(actions.close == [0])
        #expect(actions.serve.isEmpty)
        #expect(actions.open == 0, "the closing one still holds its slot")
        #expect(machine.total == 1)
        #expect(machine.closed(now: self.t0).open == 1)
        #expect(machine.opened(1, now: self.t0).serve == [.init(waiter: 2, connection: 1)])
    }

    @Test("connections idle for the idle timeout are closed; the most recently returned is reused first")
    func idleClose() {
        var machine = self.withIdle(2, max: 3)
        let check = machine.released(99, broken: false, now: self.t0)  // unknown: nothing
        #expect(check == .init())
        // Connection 1 is used again later, 0 stays idle.
        #expect(machine.borrow(5, priority: .batch, now: self.t0 + .seconds(4)).serve == [.init(waiter: 5, connection: 1)])
        _ = machine.released(1, broken: false, now: self.t0 + .seconds(5))
        let closed = machine.closeIdle(now: self.t0 + .seconds(10))
        #expect(closed.close == [0])
        #expect(closed.idleCheckAt == self.t0 + .seconds(15))
        #expect(machine.idle.map(\.id) == [1])
        #expect(machine.closeIdle(now: self.t0 + .seconds(15)).close == [1])
        #expect(machine.openCount == 0)
        #expect(machine.total == 2, "both still closing")
        _ = machine.closed(now: self.t0 + .seconds(15))
        _ = machine.closed(now: self.t0 + .seconds(15))
        #expect(machine.total == 0)
    }

    @Test("a drained pool frees its slots as the closes finish: a waiter's open waits for them")
    func drainCountsUntilClosed() {
        var machine = self.withIdle(2, max: 2)
        #expect(machine.drain() == [0, 1])
        #expect(machine.total == 2 && machine.idle.isEmpty)
        #expect(machine.borrow(1, priority: .batch, now: self.t0).open == 0)
        #expect(machine.closed(now: self.t0).open == 1)
        #expect(machine.closed(now: self.t0).open == 0, "one waiter, one open")
        #expect(machine.total == 1)
    }

    @Test("a non-blocking borrow takes an idle connection or a free slot, never one others wait for")
    func tryBorrow() {
        var machine = self.machine(max: 2)
        #expect(machine.tryBorrow(now: self.t0) == .open)
        machine.openedDirect(0)
        #expect(machine.tryBorrow(now: self.t0) == .open)
        machine.openedDirect(1)
        #expect(machine.tryBorrow(now: self.t0) == .none)  // the budget is spent
        _ = machine.released(1, broken: false, now: self.t0)
        #expect(machine.tryBorrow(now: self.t0) == .leased(1))
        // A refused direct open fails nobody and backs off.
        _ = machine.released(1, broken: true, now: self.t0)
        #expect(machine.tryBorrow(now: self.t0) == .none, "closing, it still holds its slot")
        _ = machine.closed(now: self.t0)
        #expect(machine.tryBorrow(now: self.t0) == .open)
        let failed = machine.openFailed(.refused, direct: true, now: self.t0)
        #expect(failed.fail.isEmpty && failed.retryAt != nil)
        #expect(machine.tryBorrow(now: self.t0) == .none)
    }

    @Test("a dedicated connection counts against the budget and is closed, not lent, when given back")
    func dedicated() {
        var machine = self.withIdle(1, max: 2)
        #expect(machine.borrow(1, priority: .control, dedicated: true, now: self.t0).serve == [.init(waiter: 1, connection: 0)])
        #expect(machine.dedicated == [0])
        #expect(machine.borrow(2, priority: .batch, now: self.t0).open == 1)
        #expect(machine.borrow(3, priority: .batch, now: self.t0).open == 0)  // 2 of 2 counted
        #expect(machine.released(0, broken: false, now: self.t0).close == [0])
    }

    @Test("the refusal log: at most one line every 30 s, with the count since the last")
    func refusalLog() {
        var log = RefusalLog(interval: .seconds(30))
        #expect(log.record(now: self.t0) == 1)
        for second in 1..<30 { #expect(log.record(now: self.t0 + .seconds(second)) == nil) }
        #expect(log.record(now: self.t0 + .seconds(30)) == 30)
        #expect(log.record(now: self.t0 + .seconds(31)) == nil)
        #expect(log.record(now: self.t0 + .seconds(90)) == 2)
    }

    @Test("refusals are told apart from other failures by libpq's message")
    func refusalMessages() {
        for message in [
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  sorry, too many clients already",
            "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  too many connections for role \"app\"",
            "FATAL:  too many connections for database \"app\"",
            "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
        ] {
            #expect(ConnectionLimitRefusal.isRefusal(message: message), "\(message)")
        }
        #expect(!ConnectionLimitRefusal.isRefusal(message: "connection to server at \"127.0.0.1\", port 1 failed: Connection refused"))
        #expect(!ConnectionLimitRefusal.isRefusal(message: "FATAL:  password authentication failed for user \"app\""))
    }
}
