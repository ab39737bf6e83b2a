import Logging
import Postgres
import Projections

/// A `Worker` running in a task of its own, for tests and the benchmark.
public struct RunningWorker: Sendable {
    public let worker: Worker
    public let task: Task<Void, any Error>

    /// Starts `projections` on `database`.
    public init(database: ConnectionConfiguration, projections: [any Projection], options: RuntimeOptions, logger: Logger) throws {
        let worker = try Worker(projections: projections, database: database, options: options, logger: logger)
        self.worker = worker
        self.task = Task { try await worker.run() }
    }

    /// Starts `projections` on the test database `db` (as application `projectionist`), logging
    /// warnings and worse.
    public init(_ db: TestDatabase, _ projections: [any Projection], options: RuntimeOptions = testOptions()) throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        try self.init(database: db.runtimeConfiguration, projections: projections, options: options, logger: logger)
    }

    /// The live status of the projection `name`.
    public func status(_ name: String) -> ProjectionStatus? { self.worker.board.status(name) }

    /// Cancels the worker and waits for it to stop, whatever it ended with.
    public func stop() async {
        self.task.cancel()
        _ = try? await self.task.value
    }

    /// Cancels the worker and waits for it to stop; rethrows what it failed with.
    public func finish() async throws {
        self.task.cancel()
        try await self.task.value
    }
}
