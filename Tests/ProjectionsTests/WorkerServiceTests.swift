import Logging
import Postgres
import Projections
import ServiceLifecycle
import TestSupport
import TestTraits
import Testing

/// `Worker` as a swift-service-lifecycle `Service`, in a `ServiceGroup` as an application runs it.
@Suite(.database, .timeLimit(.minutes(2)))
struct WorkerServiceTests {
    struct StopTimedOut: Error {}

    @Test("in a ServiceGroup next to another service, the worker stops on graceful shutdown, its runners recorded stopped")
    func stopsOnGracefulShutdown() async throws {
        let db = try await projectionDatabase("workerservice")
        let connection = try await db.connect()
        for index in 0..<10 { try await appendOrder("o\(index)", on: connection) }
        let last = try await head(on: connection)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let names = ["first", "second"]
        let worker = try Worker(
            projections: names.map { CounterProjection(name: $0) }, database: db.runtimeConfiguration,
            options: testOptions(), logger: logger)
        let server = ClosureService { try await gracefulShutdown() }  // stands in for the application's HTTP server
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: worker, serviceName: "worker"), .init(service: server, serviceName: "server")],
                logger: logger))

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await eventually("both caught up") {
                let first = try await checkpoint("first", on: connection)
                let second = try await checkpoint("second", on: connection)
                return first == last && second == last
            }
            #expect(try await states(on: connection).allSatisfy { $0 != "stopped" })

            await group.triggerGracefulShutdown()
            // A worker that ignored graceful shutdown would keep the group running: this fails the test instead.
            tasks.addTask {
                try await Task.sleep(for: .seconds(10))
                throw StopTimedOut()
            }
            try await tasks.next()  // the group's run returned without an error (it throws if a service failed)
            tasks.cancelAll()
        }
        let recorded = try await states(on: connection)
        #expect(recorded == ["stopped", "stopped"])
        #expect(names.map { worker.board.status($0)?.state } == [.stopped, .stopped])
        #expect(try await checkpoint("first", on: connection) == last)
    }

    /// The `state` column of every checkpoint row, by name.
    func states(on connection: PostgresConnection) async throws -> [String] {
        try await connection.query("SELECT state FROM consumer_checkpoints ORDER BY consumer_name")
            .map { try $0.decode(String.self, at: 0) }
    }
}
