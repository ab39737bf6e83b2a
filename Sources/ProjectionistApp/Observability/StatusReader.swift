import Foundation
import Postgres
import Projections

/// What `/status` serves: `status --json`'s report, read on one connection borrowed from the
/// worker's pool (control priority) at most, however many ask at once. Requests that arrive while
/// a read is in flight share it; each waits at most `patience` for it (a lock on the checkpoint
/// table, a server that does not answer, no connection free), then gets an error instead.
actor StatusReader {
    let configuration: ProjectionistConfiguration
    let pool: ConnectionPool
    let patience: Duration
    private var reading = false
    private var waiters: [Int: CheckedContinuation<Result<String, any Error>, Never>] = [:]
    private var nextWaiter = 0

    /// The read took longer than `patience`.
    struct Slow: Error, CustomStringConvertible {
        var patience: Duration
        var description: String {
            "the database did not answer within \(DurationParser.format(self.patience)) (a lock on the checkpoint table, or the server is busy or down); try again"
        }
    }

    init(configuration: ProjectionistConfiguration, pool: ConnectionPool, patience: Duration = .seconds(2)) {
        self.configuration = configuration
        self.pool = pool
        self.patience = patience
    }

    /// The report's JSON, or why there is none.
    func json() async -> Result<String, any Error> {
        let id = self.nextWaiter
        self.nextWaiter += 1
        return await withCheckedContinuation { continuation in
            self.waiters[id] = continuation
            if !self.reading {
                self.reading = true
                Task { await self.read() }
            }
            let patience = self.patience
            Task {
                try? await Task.sleep(for: patience)
                self.answer(id, .failure(Slow(patience: patience)))
            }
        }
    }

    private func answer(_ id: Int, _ result: Result<String, any Error>) {
        self.waiters.removeValue(forKey: id)?.resume(returning: result)
    }

    /// One read for everyone waiting now; later requests start the next one.
    private func read() async {
        let result: Result<String, any Error>
        let configuration = self.configuration
        do {
            result = .success(try await self.pool.withConnection(priority: .control) { try await StatusReport.read(configuration, on: $0).json })
        } catch {
            result = .failure(error)
        }
        self.reading = false
        let waiting = self.waiters
        self.waiters = [:]
        for continuation in waiting.values { continuation.resume(returning: result) }
    }
}
