import Logging
import ServiceLifecycle

/// The daemon's side of the service manager's protocol, as a service: `READY=1` once `started`
/// finishes, `STATUS=` whenever the source's summary changes, `WATCHDOG=1` while the source is
/// responsive, `STOPPING=1` when graceful shutdown begins. The rules are `HealthNotifications`.
public struct HealthReporter<Source: HealthSource>: Service {
    let source: Source
    let watchdog: Duration?
    let started: AsyncStream<Void>
    let logger: Logger
    let send: @Sendable (String) -> Void

    /// - Parameters:
    ///   - watchdog: `WATCHDOG_USEC` (`Notifier.watchdogTimeout`), or nil when the watchdog is off.
    ///   - started: finishes when the work has started; `READY=1` waits for it.
    ///   - send: where the notifications go; `sd_notify` unless a test says otherwise.
    public init(
        source: Source, watchdog: Duration?, started: AsyncStream<Void>, logger: Logger,
        send: @escaping @Sendable (String) -> Void = { Notifier.notify($0) }
    ) {
        self.source = source
        self.watchdog = watchdog
        self.started = started
        self.logger = logger
        self.send = send
    }

    public func run() async {
        await cancelWhenGracefulShutdown {
            for await _ in self.started {}
            guard !Task.isCancelled else { return }  // stopped before it started: never READY
            var notifications = HealthNotifications(watchdog: self.watchdog)
            self.send(notifications.ready(status: self.source.summary()))
            let clock = ContinuousClock()
            while !Task.isCancelled {
                let due = notifications.due(at: clock.now, status: self.source.summary()) { self.source.isResponsive(within: $0) }
                if let due { self.send(due) }
                try? await Task.sleep(for: notifications.tick)
            }
        }
        if Task.isShuttingDownGracefully {
            self.logger.info("Stopping.")
            self.send("STOPPING=1")
        }
    }
}
