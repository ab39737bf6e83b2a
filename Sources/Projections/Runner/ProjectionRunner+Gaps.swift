import Foundation
import Logging
import Postgres

/// A runner's gap actions: probing who may still own the missing positions, re-checking them,
/// reading which became visible (filling those rows into the shared window), and showing the
/// wait in the status.
extension ProjectionRunner {
    /// Performs `.probeGap`, `.recheckGap` or `.findVisible`.
    func performGap(_ action: RunnerStateMachine.Action, _ machine: inout RunnerStateMachine, _ session: inout Session)
        async throws -> RunnerStateMachine.Action
    {
        switch action {
        case .probeGap(let unresolved):
            self.metrics.recordGapWait()
            session.gapHolders = try await self.borrow { try await self.resolver.holders(on: $0) }
            self.showGap(unresolved[0].lowerBound, session.gapHolders)
            return machine.gapHolders(session.gapHolders.count, now: .now)

        case .recheckGap(let recheck):
            self.showGap(recheck.first, session.gapHolders)
            if recheck.warn { self.warnGap(recheck, session.gapHolders.first) }
            if recheck.recordStateFirst, let token = session.token {
                try await self.borrow { try await self.recordState(token: token, on: $0) }
                machine.stateRecorded(now: .now)
            }
            try await Task.sleep(for: recheck.after)  // holding no connection
            let holders = session.gapHolders
            let (stillHeld, visible) = try await self.borrow {
                try await self.resolver.recheck(holders, position: recheck.first, on: $0)
            }
            session.gapHolders.removeAll { !stillHeld.contains($0.virtualTransaction) }
            if visible { try await self.borrow { try await self.fillWindow([recheck.first], on: $0) } }
            let now = ContinuousClock.now
            if !visible, !session.gapHolders.isEmpty, machine.skippingGap(now: now) {
                self.logger.warning(
                    "Skipping a gap after gap_skip_after although its owner may still commit.",
                    metadata: ["gap.position": "\(recheck.first)", "gap.holder.pid": "\(session.gapHolders.first?.pid ?? 0)"])
            }
            return machine.gapRechecked(remaining: session.gapHolders.count, visible: visible, now: now)

        case .findVisible(let unresolved):
            // Every possible owner has ended; this later statement's snapshot sees their commits.
            let visible = try await self.borrow { connection in
                let visible = try await self.resolver.visiblePositions(in: unresolved, on: connection)
                try await self.fillWindow(Array(visible), on: connection)
                return visible
            }
            return machine.gapVisible(visible, now: .now)
        default:
            preconditionFailure("not a gap action: \(action)")
        }
    }


    /// Rows of a gap found visible after the shared reader read past them: fills them into the
    /// window, so that the next batch taken from it applies them.
    func fillWindow(_ positions: [Int64], on connection: PostgresConnection) async throws {
        guard let sharedLog = self.sharedLog else { return }
        let missing = await sharedLog.missing(positions)
        guard !missing.isEmpty else { return }
        await sharedLog.fill(try await sharedLog.windowReader.rows(at: missing, on: connection))
    }

    func showGap(_ first: Int64, _ holders: [GapResolver.Holder]) {
        let holder = holders.first.map { GapHolder(pid: $0.pid, since: $0.transactionStart) }
        self.board.update(self.name) { status in
            status.state = .waitingOnGap
            status.gapPosition = first
            status.gapHolder = holder
        }
    }

    func warnGap(_ recheck: RunnerStateMachine.GapRecheck, _ holder: GapResolver.Holder?) {
        self.logger.warning(
            "Waiting on a gap: a transaction that may still commit it is open.",
            metadata: [
                "gap.position": "\(recheck.first)", "gap.holder.pid": "\(holder?.pid ?? 0)",
                "gap.holder.since": "\(holder?.transactionStart.map { ISO8601DateFormatter().string(from: $0) } ?? "unknown")",
                "gap.waited": "\(recheck.waited)",
            ])
    }
}
