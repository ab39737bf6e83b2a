import Foundation
import Logging
import Postgres

/// A runner's ownership and connections: the lease's token (ending fenced-off owners' transactions
/// on a new one), borrowing from the pool for one action, preparing the projection's statements
/// once per connection, and recording its state (the final one included).
extension ProjectionRunner {
    /// The token of this instance's lease on the unit, nil without one. On a new lease, first
    /// ends the transactions of the owners it fences off (frozen mid-batch, they would hold the
    /// checkpoint row until the server's idle timeout).
    func leaseToken(_ session: inout Session, on connection: PostgresConnection) async throws -> Int64? {
        guard let token = self.leases.token(for: self.name) else { return nil }
        if session.token != token {
            session.token = token
            do {
                let ended = try await self.checkpoints.endFencedTransactions(self.name, token: token, on: connection)
                if ended > 0 { self.logger.warning("Ended the transaction of a previous owner.", metadata: ["count": "\(ended)"]) }
            } catch let error as PostgresError where !error.isConnectionLost && !Task.isCancelled {
                self.logger.warning(
                    "Could not end a previous owner's transactions (grant pg_signal_backend?); waiting for the server's idle timeout.",
                    metadata: ["error": "\(error)"])
            }
            self.logger.info("Took the unit over.", metadata: ["fencing_token": "\(token)"])
        }
        return token
    }

    /// The token of the lease the runner works under (a failure path continues a batch's work).
    /// - Throws: `FencedError` when the lease is gone meanwhile.
    func heldToken(_ session: Session) throws -> Int64 {
        guard let token = session.token, self.leases.token(for: self.name) == token else {
            throw FencedError(unit: self.name, token: session.token ?? 0)
        }
        return token
    }

    /// Runs `body` on a connection borrowed from the pool for this action only (batch priority).
    /// While it waits for one the runner counts as alive (`waitingForConnectionSince`): the wait is
    /// on the other units, not a hang. With `preparing`, the projection's statements are prepared
    /// first, once per (connection, projection) (`PostgresConnection.preparedKeys`).
    func borrow<T: Sendable>(preparing: Bool = false, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        self.board.update(self.name) { $0.waitingForConnectionSince = .now }
        var waiting = true
        defer { if waiting { self.board.update(self.name) { $0.waitingForConnectionSince = nil } } }
        return try await self.pool.withConnection(priority: .batch) { connection in
            self.board.update(self.name) { $0.waitingForConnectionSince = nil }
            waiting = false
            if preparing { try await self.prepare(on: connection) }
            return try await body(connection)
        }
    }

    /// Prepares the projection's statements on `connection` unless done there already.
    func prepare(on connection: PostgresConnection) async throws {
        let key = "projection \(self.projection.name)"
        guard !(await connection.preparedKeys.contains(key)) else { return }
        try await self.projection.prepare(connection)
        await connection.notePrepared(key)
    }

    /// Ends the run. Only the owner writes the unit's state (under its token): a standby's
    /// `stopped` would overwrite the state of the instance that runs it.
    func stop(record: Bool, ending: Ending, _ session: inout Session) async {
        await self.sharedLog?.leave(self.name)
        self.board.update(self.name) { status in
            status.busySince = nil
            status.ended = true
            switch ending {
            case .shutdown: status.state = .stopped
            case .retired: status.state = .retired
            case .deleted(let message):
                status.state = .failed
                status.lastError = message
            }
        }
        guard record, let token = session.token else { return }
        let status = self.status
        let checkpoints = self.checkpoints
        let name = self.name
        let pool = self.pool
        let logger = self.logger
        // The run's task is cancelled, which would refuse the statement: record the final state
        // on a borrowed connection from a task that is not (and wait for it, so the row is written
        // before we return).
        await Task {
            do {
                try await pool.withConnection { try await checkpoints.recordState(name, token: token, status: status, on: $0) }
            } catch {
                logger.warning(
                    "Could not record the final state; the row keeps the last one recorded.",
                    metadata: ["state": "\(status.state.rawValue)", "error": "\(error)"])
            }
        }.value
    }

    /// Records the runner's state in its row, marked busy: a heartbeat that waits on the row's
    /// lock (`reset` holds it through its SQL) waits on the server, and the runner is alive.
    func recordState(token: Int64, status: ProjectionStatus? = nil, on connection: PostgresConnection) async throws {
        let status = status ?? self.status
        try await self.busy { try await self.checkpoints.recordState(self.name, token: token, status: status, on: connection) }
    }

    /// Records `failed` (the board's state and error) in the row, on a borrowed connection;
    /// never throws.
    func recordFailure(token: Int64) async {
        try? await self.borrow { try await self.recordState(token: token, on: $0) }
    }
}
