import Foundation
import Postgres
import Projections

/// What `/status` serves: `status --json`'s report, read through one connection of its own at
/// most, however many ask at once. Requests that arrive while a read is in flight share it; each
/// waits at most `patience` for it (a lock on the checkpoint table, a server that does not answer),
/// then gets an error instead. The connection is opened on the first request and kept.
actor StatusReader {
    let configuration: ProjectionistConfiguration
    let database: ConnectionConfiguration
    let patience: Duration
    private var connection: PostgresConnection?
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

    init(configuration: ProjectionistConfiguration, database: ConnectionConfiguration, patience: Duration = .seconds(2)) {
        self.configuration = configuration
        self.database = database.role("status")
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
        do {
            let connection: PostgresConnection
            if let open = self.connection, await open.isConnected {
                connection = open
            } else {
                connection = try await PostgresConnection.connect(self.database)
                self.connection = connection
            }
            result = .success(try await StatusReport.read(self.configuration, on: connection).json)
        } catch {
            if let broken = self.connection, !(await broken.isConnected) {
                await broken.close()
                self.connection = nil
            }
            result = .failure(error)
        }
        self.reading = false
        let waiting = self.waiters
        self.waiters = [:]
        for continuation in waiting.values { continuation.resume(returning: result) }
    }
}
