import EventStore
import Foundation
import Postgres
@testable import Projections
import Testing

/// The state machine's answers to lost connections, permanent errors and stops, and how it
/// classifies errors.
extension RunnerStateMachineTests {
    // MARK: - Connection failures and stop

    @Test("transient errors reconnect after jittered, doubling delays; a new connection or a commit resets them")
    func transientBackoff() {
        var machine = self.machine()
        let lost = RunnerFailure.transient(message: "gone", connectionLost: true)
        let first = try! #require(machine.failed(lost, now: self.t0).reconnect)
        #expect(first.closeConnection && first.failed == nil)
        #expect(first.after >= .milliseconds(50) && first.after <= .milliseconds(100))
        #expect(machine.waited(woken: false, now: self.t0).kind == .connect)
        let second = try! #require(machine.failed(lost, now: self.t0).reconnect)
        #expect(second.after >= .milliseconds(100) && second.after <= .milliseconds(200))
        _ = machine.connected(now: self.t0)
        let afterConnect = try! #require(machine.failed(lost, now: self.t0).reconnect)
        #expect(afterConnect.after <= .milliseconds(100))
        _ = machine.waited(woken: false, now: self.t0)
        _ = machine.connected(now: self.t0)
        _ = machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 1, full: true), now: self.t0)
        let afterCommit = try! #require(
            machine.failed(.transient(message: "40001", connectionLost: false), now: self.t0).reconnect)
        #expect(!afterCommit.closeConnection)
        #expect(afterCommit.after <= .milliseconds(100))
        #expect(machine.waited(woken: false, now: self.t0).kind == .runBatch)
    }

    @Test("after a lost connection: one batch per transaction without read-ahead for 8 commits, then catch-up as before")
    func recoveringIsSmall() {
        var machine = self.machine()
        _ = machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: 100, readAhead: true, full: true), now: self.t0)
        _ = machine.failed(.transient(message: "gone", connectionLost: true), now: self.t0)
        #expect(machine.waited(woken: false, now: self.t0).kind == .connect)
        let plan = try! #require(machine.connected(now: self.t0).plan)
        #expect(plan.maxBatches == 1 && !plan.readAhead)
        var plans: [RunnerStateMachine.BatchPlan] = []
        for position in 1...8 {
            plans.append(machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: Int64(100 + position), full: true), now: self.t0).plan!)
        }
        #expect(plans.prefix(7).allSatisfy { $0.maxBatches == 1 && !$0.readAhead })
        #expect(plans[7].maxBatches == 8 && plans[7].readAhead)
    }

    @Test("failures halve the batch down to a sixteenth of batch_size; commits double it back")
    func batchSizeAdapts() {
        var machine = self.machine()
        var sizes: [Int] = []
        for _ in 0..<6 {
            _ = machine.failed(.transient(message: "killed", connectionLost: true), now: self.t0)
            _ = machine.waited(woken: false, now: self.t0)
            sizes.append(machine.connected(now: self.t0).plan!.batchSize)
        }
        #expect(sizes == [500, 250, 125, 62, 62, 62])
        var growing: [Int] = []
        for position in 1...6 {
            growing.append(
                machine.batchCommitted(BatchSummary(outcome: .progressed, checkpoint: Int64(position), full: true), now: self.t0).plan!.batchSize)
        }
        #expect(growing == [124, 248, 496, 992, 1000, 1000])
    }

    @Test("a permanent error marks the projection failed and waits the longest delay")
    func permanentError() {
        var machine = self.machine()
        let reconnect = try! #require(machine.failed(.permanent(message: "no such table", connectionLost: false), now: self.t0).reconnect)
        #expect(reconnect.failed == "no such table")
        #expect(reconnect.after >= .seconds(15) && reconnect.after <= .seconds(30))
    }

    @Test("only the owner records its state when stopping, a lost connection or not: a standby's stop writes nothing")
    func standbyStops() {
        var standby = self.machine()
        #expect(standby.notOwner(now: self.t0).wait?.standby == true)
        guard case .stop(let record) = standby.cancelled() else {
            Issue.record("cancel stops")
            return
        }
        #expect(!record)

        var owner = self.machine()
        _ = owner.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 3), now: self.t0)
        guard case .stop(let ownerRecords) = owner.cancelled() else {
            Issue.record("cancel stops")
            return
        }
        #expect(ownerRecords)

        // An owner that lost its connection still holds its lease (a row the coordinator
        // renews): it records `stopped` on a connection of its own, fenced by its token.
        var lost = self.machine()
        _ = lost.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 3), now: self.t0)
        _ = lost.failed(.transient(message: "gone", connectionLost: true), now: self.t0)
        guard case .stop(let lostRecords) = lost.cancelled() else {
            Issue.record("cancel stops")
            return
        }
        #expect(lostRecords)

        // An owner whose lease lapsed (renewals late: it stood by) records too; the SQL refuses
        // the write if another instance got a newer lease meanwhile.
        var lapsed = self.machine()
        _ = lapsed.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 3), now: self.t0)
        _ = lapsed.notOwner(now: self.t0)
        guard case .stop(let lapsedRecords) = lapsed.cancelled() else {
            Issue.record("cancel stops")
            return
        }
        #expect(lapsedRecords)

        // A runner cancelled in its first batch (nothing committed yet) owns the unit from the
        // batch's start under its lease: it records `stopped` too.
        var first = self.machine()
        _ = first.start()
        first.batchStarting()
        guard case .stop(let firstRecords) = first.failed(.cancelled, now: self.t0) else {
            Issue.record("cancel stops")
            return
        }
        #expect(firstRecords)

        // One fenced off by a newer owner does not.
        var fenced = self.machine()
        _ = fenced.batchCommitted(BatchSummary(outcome: .idle, checkpoint: 3), now: self.t0)
        _ = fenced.failed(.fenced, now: self.t0)
        guard case .stop(let fencedRecords) = fenced.cancelled() else {
            Issue.record("cancel stops")
            return
        }
        #expect(!fencedRecords)
    }

    // MARK: - Classification

    @Test("transient errors, also wrapped by a Swift handler, are retried, never blamed on the event")
    func classification() {
        let event = self.event(1)
        func server(_ state: String) -> PostgresError { PostgresError(code: .server, message: state, sqlState: state) }
        for state in ["40001", "40P01", "55P03", "57P01", "08006", "53300"] {
            #expect(RunnerFailure.classify(server(state), cancelled: false).isTransient, "\(state)")
            #expect(RunnerFailure.classify(HandlerError(event: event, error: server(state)), cancelled: false).isTransient, "wrapped \(state)")
        }
        #expect(RunnerFailure.classify(PostgresError(code: .connectionLost, message: "eof"), cancelled: false).connectionLost)
        #expect(RunnerFailure.classify(HandlerError(event: event, error: server("57014")), cancelled: false) == .handler(
            message: HandlerError(event: event, error: server("57014")).description))
        #expect(RunnerFailure.classify(HandlerError(event: event, error: server("22012")), cancelled: false).isHandler)
        #expect(RunnerFailure.classify(server("42P01"), cancelled: false) == .permanent(message: "\(server("42P01"))", connectionLost: false))
        #expect(RunnerFailure.classify(server("57014"), cancelled: true) == .cancelled)
        #expect(RunnerFailure.classify(CancellationError(), cancelled: false) == .cancelled)
    }
}
