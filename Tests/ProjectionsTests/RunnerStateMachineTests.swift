import EventStore
import Foundation
import Postgres
@testable import Projections
import Testing

/// The runner's decisions, without a server and without sleeping: time is an argument.
@Suite struct RunnerStateMachineTests {
    let t0 = ContinuousClock.now

    func options(_ change: (inout RuntimeOptions) -> Void = { _ in }) -> RuntimeOptions {
        var options = RuntimeOptions()
        options.pollInterval = .seconds(1)
        options.maxPollInterval = .seconds(8)
        options.heartbeatInterval = .seconds(5)
        options.handlerRetries = 3
        options.handlerRetryDelay = .milliseconds(100)
        options.reconnectDelay = .milliseconds(100)
        options.maxReconnectDelay = .seconds(30)
        options.gapWarnAfter = .seconds(30)
        change(&options)
        return options
    }

    func machine(onError: OnError = .stop, _ change: (inout RuntimeOptions) -> Void = { _ in }) -> RunnerStateMachine {
        var machine = RunnerStateMachine(options: self.options(change), onError: onError)
        #expect(machine.start().kind == .connect)
        #expect(machine.connected(now: self.t0).kind == .runBatch)
        return machine
    }

    func event(_ position: Int64) -> PersistedEvent {
        PersistedEvent(
            globalPosition: position, aggregateType: "Order", aggregateID: "o", aggregateVersion: 1, eventID: UUID(),
            eventType: "Poison", eventVersion: 1, payload: [], metadata: nil, traceID: nil, correlationID: nil,
            causationID: nil, createdAt: .now)
    }

    func failure(_ events: [Int64], checkpoint: Int64, transactionStart: Int64? = nil) -> BatchFailure {
        let events = events.map(self.event)
        return BatchFailure(
            events: events, checkpoint: checkpoint, transactionStart: transactionStart ?? checkpoint,
            frontier: Frontier(position: events.last!.globalPosition, skipped: [], unresolved: []),
            highestVisible: events.last!.globalPosition,
            error: HandlerError(event: events.last!, error: PostgresError(code: .server, message: "boom", sqlState: "22012")))
    }

    // MARK: - Batches and waits

    @Test("catching up: progress with a read-ahead plans the next batch with a read-ahead, at once")
    func catchUp() {
        var machine = self.machine()
        let plan = machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 100, readAhead: true, full: true), now: self.t0)
        #expect(plan.plan == RunnerStateMachine.BatchPlan(maxBatches: 8, batchSize: 1000, readAhead: true, dead: DeadPositions()))
        #expect(machine.checkpoint == 100)
    }

    @Test("the first batch reads without a read-ahead; after a read-ahead failure none until its backoff passed")
    func readAheadFailure() {
        var machine = self.machine()
        let failed = machine.batchCommitted(
            BatchSummary(outcome: .progressed, checkpoint: 100, readAhead: false, readAheadFailed: true, full: true), now: self.t0)
        #expect(failed.plan?.readAhead == false)
        #expect(failed.plan?.maxBatches == 8)
        // Within the backoff (≤ 100 ms): still none.
        let soon = machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 200, full: true), now: self.t0 + .milliseconds(10))
        #expect(soon.plan?.readAhead == false)
        let later = machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 300, full: true), now: self.t0 + .milliseconds(200))
        #expect(later.plan?.readAhead == true)
    }

    @Test("idle: wait with a heartbeat first, close the reader; the poll delay doubles to its cap, a wake-up resets it")
    func idleBackoff() {
        var machine = self.machine()
        let first = machine.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 10), now: self.t0)
        let wait = try! #require(first.wait)
        #expect(wait.recordStateFirst)  // never persisted yet
        #expect(wait.closeReader)
        #expect(wait.until == self.t0 + .seconds(1))
        machine.stateRecorded(now: self.t0)
        var now = self.t0 + .seconds(1)
        #expect(machine.waited(woken: false, now: now).kind == .runBatch)
        #expect(machine.pollDelay == .seconds(2))
        for _ in 0..<5 {
            _ = machine.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 10), now: now)
            now = now + machine.pollDelay
            _ = machine.waited(woken: false, now: now)
        }
        #expect(machine.pollDelay == .seconds(8))
        _ = machine.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 10), now: now)
        #expect(machine.waited(woken: true, now: now + .milliseconds(5)).kind == .runBatch)
        #expect(machine.pollDelay == .seconds(1))
    }

    @Test("a long idle wait is cut at the heartbeat, which records the state, then goes on to the poll deadline")
    func idleHeartbeat() {
        var machine = self.machine { $0.pollInterval = .seconds(20); $0.maxPollInterval = .seconds(20) }
        let wait = try! #require(
            machine.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 10, persisted: true), now: self.t0).wait)
        #expect(!wait.recordStateFirst)
        #expect(wait.until == self.t0 + .seconds(5))
        let next = try! #require(machine.waited(woken: false, now: self.t0 + .seconds(5)).wait)
        #expect(next.recordStateFirst)
        #expect(!next.closeReader)
        machine.stateRecorded(now: self.t0 + .seconds(5))
        #expect(next.until == self.t0 + .seconds(10))
        #expect(machine.waited(woken: false, now: self.t0 + .seconds(20)).kind == .runBatch)
    }

    // MARK: - Gaps

    @Test("a gap with no possible owner: find what is visible, the rest is dead and the next batch passes it")
    func gapWithoutOwners() {
        var machine = self.machine()
        #expect(machine.batchCommitted(BatchSummary(outcome: .blocked([3...6, 9...9]), checkpoint: 2), now: self.t0).kind == .probeGap)
        #expect(machine.gapHolders(0, now: self.t0).kind == .findVisible)
        let plan = try! #require(machine.gapVisible([5], now: self.t0).plan)
        #expect(plan.dead.ranges == [
            DeadRange(positions: 3...4, reason: .aborted), DeadRange(positions: 6...6, reason: .aborted),
            DeadRange(positions: 9...9, reason: .aborted),
        ])
    }

    @Test("a resolved gap of billions of positions splits into dead ranges at once: the work follows the visible positions, not the range")
    func hugeGapVisible() {
        var machine = self.machine()
        let end: Int64 = 4_000_000_000
        #expect(machine.batchCommitted(BatchSummary(outcome: .blocked([3...end]), checkpoint: 2), now: self.t0).kind == .probeGap)
        #expect(machine.gapHolders(0, now: self.t0).kind == .findVisible)
        let plan = try! #require(machine.gapVisible([10, end - 1, 999], now: self.t0).plan)
        #expect(plan.dead.ranges == [
            DeadRange(positions: 3...9, reason: .aborted), DeadRange(positions: 11...998, reason: .aborted),
            DeadRange(positions: 1000...(end - 2), reason: .aborted), DeadRange(positions: end...end, reason: .aborted),
        ])
    }

    @Test("a deleted checkpoint row stops the unit without writing its state (there is no row to write)")
    func deletedRow() {
        var machine = self.machine()
        _ = machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 10), now: self.t0)
        let action = machine.failed(.deleted(message: "checkpoint row of 'p' was deleted"), now: self.t0)
        guard case .stop(let record) = action else {
            Issue.record("expected stop, got \(action)")
            return
        }
        #expect(!record)
        #expect(!machine.owned)
    }

    @Test("a gap with owners: re-check hot, record the state once after 500 ms, warn once after gap_warn_after")
    func gapWithOwners() {
        var machine = self.machine { $0.gapWarnAfter = .seconds(2) }
        _ = machine.batchCommitted(BatchSummary(outcome: .blocked([3...3]), checkpoint: 2, persisted: true), now: self.t0)
        let first = try! #require(machine.gapHolders(2, now: self.t0).recheck)
        #expect(first.first == 3 && !first.warn && !first.recordStateFirst)
        #expect(first.after == RuntimeOptions().gapRecheckInterval)
        let later = try! #require(machine.gapRechecked(remaining: 2, visible: false, now: self.t0 + .milliseconds(600)).recheck)
        #expect(later.recordStateFirst && !later.warn)
        let again = try! #require(machine.gapRechecked(remaining: 1, visible: false, now: self.t0 + .milliseconds(700)).recheck)
        #expect(!again.recordStateFirst)
        let warned = try! #require(machine.gapRechecked(remaining: 1, visible: false, now: self.t0 + .seconds(2)).recheck)
        #expect(warned.warn)
        #expect(machine.gapRechecked(remaining: 1, visible: false, now: self.t0 + .seconds(3)).recheck?.warn == false)
        // Its owner committed: the next batch applies it.
        let plan = try! #require(machine.gapRechecked(remaining: 1, visible: true, now: self.t0 + .seconds(4)).plan)
        #expect(plan.dead.ranges.isEmpty)
    }

    @Test("the last owner ended without the position: find what is visible")
    func gapOwnersEnded() {
        var machine = self.machine()
        _ = machine.batchCommitted(BatchSummary(outcome: .blocked([3...3]), checkpoint: 2), now: self.t0)
        _ = machine.gapHolders(1, now: self.t0)
        #expect(machine.gapRechecked(remaining: 0, visible: false, now: self.t0 + .milliseconds(10)).kind == .findVisible)
    }

    @Test("gap_skip_after: a gap whose owner still runs is passed as timeout")
    func gapSkipAfter() {
        var machine = self.machine { $0.gapSkipAfter = .seconds(1) }
        _ = machine.batchCommitted(BatchSummary(outcome: .blocked([3...4]), checkpoint: 2), now: self.t0)
        _ = machine.gapHolders(1, now: self.t0)
        #expect(machine.gapRechecked(remaining: 1, visible: false, now: self.t0 + .milliseconds(900)).kind == .recheckGap)
        #expect(machine.skippingGap(now: self.t0 + .seconds(1)))
        let plan = try! #require(machine.gapRechecked(remaining: 1, visible: false, now: self.t0 + .seconds(1)).plan)
        #expect(plan.dead.ranges == [DeadRange(positions: 3...4, reason: .timeout)])
    }

    @Test("dead positions at or below the checkpoint are forgotten once it passed them")
    func deadForgotten() {
        var machine = self.machine()
        _ = machine.batchCommitted(BatchSummary(outcome: .blocked([3...4, 8...8]), checkpoint: 2), now: self.t0)
        _ = machine.gapHolders(0, now: self.t0)
        _ = machine.gapVisible([], now: self.t0)
        #expect(machine.dead.ranges.count == 2)
        let plan = try! #require(
            machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 6, full: true), now: self.t0).plan)
        #expect(plan.dead.ranges == [DeadRange(positions: 8...8, reason: .aborted)])
        _ = machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 8, full: true), now: self.t0)
        #expect(machine.dead.ranges.isEmpty)
    }

    // MARK: - Handler failures

    @Test("a failure in a later batch of a multi-batch transaction redoes the batches one per transaction")
    func failureInLaterBatch() {
        var machine = self.machine()
        let plan = try! #require(machine.batchFailed(self.failure([150, 151], checkpoint: 120, transactionStart: 100), now: self.t0).plan)
        #expect(plan.maxBatches == 1 && !plan.readAhead)
        // Single batches until past the failing batch.
        #expect(machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 120, full: true), now: self.t0).plan?.maxBatches == 1)
        #expect(machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 151, full: true), now: self.t0).plan?.maxBatches == 8)
    }

    @Test("a poison event alone in its batch is isolated, retried with growing delays, then parked (stop) — never re-run for ever")
    func poisonAloneStop() {
        var machine = self.machine(onError: .stop)
        let failure = self.failure([7], checkpoint: 5)
        guard case .isolate(let isolating) = machine.batchFailed(failure, now: self.t0) else {
            Issue.record("a failed batch is isolated")
            return
        }
        #expect(isolating.events.map(\.globalPosition) == [7])
        let poison = self.event(7)
        let error = failure.error
        let first = machine.isolated(.failing(poison, error), now: self.t0)
        #expect(first.retry?.delay == .milliseconds(100))
        #expect(machine.checkpoint == 6)
        #expect(machine.retried(.failed(error), now: self.t0).retry?.delay == .milliseconds(200))
        #expect(machine.retried(.failed(error), now: self.t0).retry?.delay == .milliseconds(400))
        guard case .halt(let parked, _) = machine.retried(.failed(error), now: self.t0) else {
            Issue.record("stop parks after the retries")
            return
        }
        #expect(parked.globalPosition == 7)
        let check = machine.halted(poison, now: self.t0)
        #expect(check.kind == .checkHalted)
        // Still parked at the event: keep checking, with a heartbeat when due.
        guard case .checkHalted(_, let record) = machine.haltChecked(position: 6, now: self.t0 + .seconds(6)) else {
            Issue.record("stays parked")
            return
        }
        #expect(record)
        // The longest backoff passed: the event is tried again.
        #expect(machine.haltChecked(position: 6, now: self.t0 + .seconds(31)).kind == .runBatch)
    }

    @Test("on_error skip and park dead-letter the event after its retries, then carry on", arguments: [OnError.skip, .park])
    func poisonSkip(onError: OnError) {
        var machine = self.machine(onError: onError)
        let failure = self.failure([7], checkpoint: 5)
        _ = machine.batchFailed(failure, now: self.t0)
        _ = machine.isolated(.failing(self.event(7), failure.error), now: self.t0)
        _ = machine.retried(.failed(failure.error), now: self.t0)
        _ = machine.retried(.failed(failure.error), now: self.t0)
        guard case .deadLetter(let event, _) = machine.retried(.failed(failure.error), now: self.t0) else {
            Issue.record("skip dead-letters")
            return
        }
        #expect(event.globalPosition == 7)
        #expect(machine.deadLettered(now: self.t0).kind == .runBatch)
    }

    @Test("a retry that succeeds, or finds the checkpoint moved, carries on with batches")
    func retrySucceeds() {
        var machine = self.machine()
        let failure = self.failure([7], checkpoint: 5)
        _ = machine.batchFailed(failure, now: self.t0)
        _ = machine.isolated(.failing(self.event(7), failure.error), now: self.t0)
        #expect(machine.retried(.applied, now: self.t0).kind == .runBatch)
        _ = machine.batchFailed(failure, now: self.t0)
        #expect(machine.isolated(.moved, now: self.t0).kind == .runBatch)
    }

    @Test("a reset while parked releases the projection")
    func resetWhileParked() {
        var machine = self.machine()
        let failure = self.failure([7], checkpoint: 5)
        _ = machine.batchFailed(failure, now: self.t0)
        _ = machine.isolated(.failing(self.event(7), failure.error), now: self.t0)
        _ = machine.halted(self.event(7), now: self.t0)
        #expect(machine.haltChecked(position: 0, now: self.t0 + .seconds(1)).kind == .runBatch)
        #expect(machine.checkpoint == 0)
    }

    @Test("the remaining transitions: a batch that passes on isolation, a retry that finds the checkpoint moved, a standby's recheck, a handler error outside a batch")
    func remainingTransitions() {
        var machine = self.machine()
        let failure = self.failure([7, 8], checkpoint: 5)
        _ = machine.batchFailed(failure, now: self.t0)
        #expect(machine.isolated(.passed, now: self.t0).kind == .runBatch)
        _ = machine.batchFailed(failure, now: self.t0)
        _ = machine.isolated(.failing(self.event(7), failure.error), now: self.t0)
        #expect(machine.retried(.moved, now: self.t0).kind == .runBatch)

        var standby = self.machine()
        let wait = try! #require(standby.notOwner(now: self.t0).wait)
        #expect(wait.until == self.t0 + .seconds(1) && wait.closeReader && !wait.recordStateFirst)
        #expect(standby.waited(woken: false, now: self.t0 + .seconds(1)).kind == .runBatch)

        var preparing = self.machine()
        let reconnect = try! #require(preparing.failed(.handler(message: "cannot prepare"), now: self.t0).reconnect)
        #expect(reconnect.failed == "cannot prepare" && !reconnect.closeConnection)
        #expect(reconnect.after >= .seconds(15))
    }
}

extension RunnerStateMachine.Action {
    enum Kind { case connect, runBatch, wait, probeGap, recheckGap, findVisible, isolate, retryEvent, deadLetter, halt, checkHalted, reconnect, stop }

    var kind: Kind {
        switch self {
        case .connect: .connect
        case .runBatch: .runBatch
        case .wait: .wait
        case .probeGap: .probeGap
        case .recheckGap: .recheckGap
        case .findVisible: .findVisible
        case .isolate: .isolate
        case .retryEvent: .retryEvent
        case .deadLetter: .deadLetter
        case .halt: .halt
        case .checkHalted: .checkHalted
        case .reconnect: .reconnect
        case .stop: .stop
        }
    }

    var plan: RunnerStateMachine.BatchPlan? {
        if case .runBatch(let plan) = self { return plan }
        return nil
    }
    var wait: RunnerStateMachine.Wait? {
        if case .wait(let wait) = self { return wait }
        return nil
    }
    var recheck: RunnerStateMachine.GapRecheck? {
        if case .recheckGap(let recheck) = self { return recheck }
        return nil
    }
    var reconnect: RunnerStateMachine.Reconnect? {
        if case .reconnect(let reconnect) = self { return reconnect }
        return nil
    }
    var retry: (event: PersistedEvent, delay: Duration)? {
        if case .retryEvent(let event, let delay) = self { return (event, delay) }
        return nil
    }
}

extension RunnerFailure {
    var isHandler: Bool {
        if case .handler = self { return true }
        return false
    }
}
