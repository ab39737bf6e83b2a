import EventStore
import Foundation
import Logging
import Postgres
import Projections
import TestSupport
import Testing

/// Options for tests: short delays so failure paths finish quickly.
func testOptions(_ change: (inout RuntimeOptions) -> Void = { _ in }) -> RuntimeOptions {
    var options = RuntimeOptions()
    options.pollInterval = .milliseconds(100)
    options.maxPollInterval = .milliseconds(500)
    options.handlerRetries = 2
    options.handlerRetryDelay = .milliseconds(10)
    options.reconnectDelay = .milliseconds(20)
    options.maxReconnectDelay = .seconds(1)
    options.heartbeatInterval = .milliseconds(500)
    change(&options)
    return options
}

/// A worker running in a task of the test.
struct RunningWorker {
    let worker: Worker
    let task: Task<Void, any Error>

    init(_ db: TestDatabase, _ projections: [any Projection], options: RuntimeOptions = testOptions()) throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let worker = try Worker(projections: projections, database: db.runtimeConfiguration, options: options, logger: logger)
        self.worker = worker
        self.task = Task { try await worker.run() }
    }

    func status(_ name: String) -> ProjectionStatus? { self.worker.board.status(name) }

    /// Cancels the worker and waits for it to stop.
    func stop() async {
        self.task.cancel()
        _ = try? await self.task.value
    }
}

/// Waits until `condition` holds, failing the test after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("timed out after \(timeout) waiting for: \(what)")
    throw CancellationError()
}

/// A migrated database with the test read models.
func projectionDatabase(_ label: String) async throws -> TestDatabase {
    let db = try await TestDatabase.migrated(label)
    let connection = try await db.connect()
    try await connection.execute(script: OrderWorkload.readModelSQL + ";" + CounterProjection.setupSQL)
    await connection.close()
    return db
}

/// The projection's checkpoint; -1 while it has no row.
func checkpoint(_ name: String, on connection: PostgresConnection) async throws -> Int64 {
    try await CheckpointStore().position(name, on: connection) ?? -1
}

/// The projection's checkpoint row as the daemon left it; nil while it has none.
func record(_ name: String, on connection: PostgresConnection) async throws -> CheckpointRecord? {
    try await CheckpointStore().records([name], on: connection).first
}

func head(on connection: PostgresConnection) async throws -> Int64 {
    try await EventStore().latestPosition(on: connection)
}

/// Appends one order in its own transaction; rolls back instead of committing when asked.
struct Rollback: Error {}

@discardableResult
func appendOrder(_ id: String, lines: Int = 2, rollback: Bool = false, on connection: PostgresConnection) async throws -> [Int64] {
    var positions: [Int64] = []
    do {
        try await connection.transaction { tx in
            positions = try await EventStore().append(OrderWorkload.events(orderID: id, lines: lines), expected: .noStream, in: tx).globalPositions
            if rollback { throw Rollback() }
        }
    } catch is Rollback {}
    return positions
}
