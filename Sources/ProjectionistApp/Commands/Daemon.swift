import EventStore
import Foundation
import Logging
import Postgres
import Projections
import Systemd

/// `projectionist run`: the daemon in the foreground until SIGTERM/SIGINT.
public struct Daemon: Sendable {
    public let configuration: ProjectionistConfiguration
    let logger: Logger

    public init(configuration: ProjectionistConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts, runs until a signal, stops cleanly.
    /// - Throws: `ConfigurationError`/`SchemaError` (exit 78), `DatabaseUnavailableError` (69).
    public func run() async throws {
        MemoryTrimmer.limitArenas()
        let projections = try self.configuration.sqlProjections()
        var options = self.configuration.runtimeOptions
        let watchdog = Notifier.watchdogTimeout
        if let watchdog { options.beatInterval = min(options.beatInterval, watchdog / 4) }
        let runtime = options
        let database = try self.configuration.connectionConfiguration()
        let logger = self.logger
        let stopped = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                let signal = await SignalWaiter.wait()
                logger.info("Stopping.", metadata: ["signal": "\(signal)"])
                Notifier.stopping()
                return true
            }
            group.addTask {
                let connection = try await DatabaseConnector.connect(database, timeout: self.configuration.database.startupTimeout, logger: logger)
                try await StartupCheck.verify(runtime.schema, allowSequenceCache: runtime.allowSequenceCache, on: connection)
                await connection.close()
                let worker = try Worker(projections: projections, database: database, options: runtime, logger: logger)
                try await worker.run(
                    verify: false,
                    ready: {
                        logger.info("Ready.", metadata: ["projections": "\(projections.count)"])
                        Notifier.ready(status: worker.board.summaryLine)
                    },
                    health: { board in await HealthReporter(watchdog: watchdog).run(board) })
                return false
            }
            let first = try await group.next() ?? true
            group.cancelAll()
            return first
        }
        if stopped { self.logger.info("Stopped.") }
    }
}

/// Keeps `STATUS=` current and pings the watchdog while every runner is responsive.
struct HealthReporter: Sendable {
    /// `WATCHDOG_USEC`, or nil when the watchdog is off.
    let watchdog: Duration?

    func run(_ board: StatusBoard) async {
        var lastStatus = ""
        let clock = ContinuousClock()
        var lastPing = clock.now - .seconds(3600)
        var wasIdle = false
        let tick = min(self.watchdog.map { $0 / 4 } ?? .seconds(1), .seconds(1))
        while !Task.isCancelled {
            let line = board.summaryLine
            if line != lastStatus {
                Notifier.status(line)
                lastStatus = line
            }
            if let watchdog, clock.now - lastPing >= watchdog / 2, board.allResponsive(within: watchdog / 2) {
                Notifier.watchdog()
                lastPing = clock.now
            }
            // After a catch-up the batches' memory is free but still resident: give it back once idle.
            let idle = board.all.allSatisfy { $0.state == .idle || $0.state == .standby }
            if idle && !wasIdle { MemoryTrimmer.trim() }
            wasIdle = idle
            try? await Task.sleep(for: tick)
        }
    }
}
