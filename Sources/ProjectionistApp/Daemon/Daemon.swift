import Encryption
import EventStore
import Logging
import Metrics
import Prometheus
import Postgres
import Projections
import ServiceLifecycle
import Systemd
import Synchronization
import UnixSignals

/// `projectionist run`: the daemon in the foreground until SIGTERM/SIGINT.
///
/// A `ServiceGroup` of three services: the worker (after waiting for the database and checking
/// the schema), the `IdleMemoryTrimmer` and the systemd `HealthReporter`. A signal shuts them
/// down gracefully in reverse order: the reporter says `STOPPING=1`, then the runners stop and
/// record it.
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
        options.decryptor = try self.configuration.payloadDecryptor()  // a bad key file: exit 78 before anything starts
        let watchdog = Notifier.watchdogTimeout
        if let watchdog { options.beatInterval = min(options.beatInterval, watchdog / 4) }
        let runtime = options
        let database = try self.configuration.connectionConfiguration()
        let startupTimeout = self.configuration.database.startupTimeout
        let logger = self.logger
        let registry = PrometheusCollectorRegistry()
        if self.configuration.metrics.listen != nil { Self.bootstrapMetrics(registry) }
        let worker = try Worker(projections: projections, database: database, options: runtime, logger: logger)
        let (started, markStarted) = AsyncStream.makeStream(of: Void.self)
        let startedFlag = HTTPServer.StartedFlag()

        // The listener binds its address before anything else starts: a port in use (another
        // instance on this host) is a clear exit 78, before READY, whatever the timing.
        let listening = ListenerGate(enabled: self.configuration.metrics.listen != nil)
        let startedWorker = ClosureService {
            try await cancelWhenGracefulShutdown {
                do {
                    guard try await listening.wait() else { return }  // shut down before the listener was bound
                    let connection = try await DatabaseConnector.connect(database, timeout: startupTimeout, logger: logger)
                    try await worker.verifyStartup(requireViews: true, on: connection)
                    if let decryptor = runtime.decryptor {
                        try await KeyringCheck.verify(self.configuration, keyStore: decryptor.keyStore, on: connection)
                    }
                    // Kept as the pool's first connection: closing it while the pool opens its own
                    // would leave its server process holding a slot beside them for a moment.
                    worker.pool.adopt(connection)
                } catch {
                    if Task.isCancelled { return }  // a signal while starting: a clean stop, not a failure
                    throw error
                }
                try await worker.run(
                    verify: false,
                    ready: {
                        logger.info("Ready.", metadata: ["projections": "\(projections.count)"])
                        startedFlag.set()
                        markStarted.finish()
                    })
            }
        }
        let reporter = HealthReporter(
            source: WorkerHealth(board: worker.board, slowBatchWarn: runtime.slowBatchWarn), watchdog: watchdog,
            started: started, logger: logger)
        var http: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let address = self.configuration.metrics.listen {
            let server = HTTPServer(
                address: address, source: self.configuration.metrics.listenSource, registry: registry, board: worker.board,
                started: startedFlag, configuration: self.configuration, pool: worker.pool, liveness: max(runtime.beatInterval * 5, .seconds(5)), logger: logger)
            let service = try server.service(bound: {
                logger.info("Serving /metrics, /healthz, /readyz and /status.", metadata: ["address": "\(address)"])
                listening.finish(.bound)
            })
            http.append(
                .init(
                    service: ClosureService {
                        do {
                            try await service.run()
                            listening.finish(.ended)  // a shutdown before it was bound: the worker must not wait on
                        } catch {
                            listening.finish(.failed(error))
                            throw error
                        }
                    }, serviceName: "HTTP listener"))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: http + [
                    .init(service: startedWorker, serviceName: "worker"),
                    .init(service: IdleMemoryTrimmer(board: worker.board), serviceName: "memory trimmer"),
                    .init(service: reporter, serviceName: "health reporter"),  // last: the first to hear of a shutdown
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("Stopped.")
    }

    /// swift-metrics goes to `registry` (once per process; later calls keep the first backend).
    static func bootstrapMetrics(_ registry: PrometheusCollectorRegistry) {
        Self.bootstrap.withLock { done in
            guard !done else { return }
            MetricsSystem.bootstrap(MetricsCatalog.Factory(registry: registry))
            done = true
        }
    }

    private static let bootstrap = Mutex(false)
}
