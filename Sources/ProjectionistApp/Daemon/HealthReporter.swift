import Logging
import Projections
import ServiceLifecycle
import Systemd

/// The daemon's side of the service manager's protocol, as a service: `READY=1` once the worker
/// has started, `STATUS=` whenever the summary changes, `WATCHDOG=1` while every runner is
/// responsive, `STOPPING=1` when graceful shutdown begins.
///
/// It lives here rather than in the Systemd target, which stays free of the runtime it reports on.
struct HealthReporter: Service {
    let board: StatusBoard
    /// `WATCHDOG_USEC`, or nil when the watchdog is off.
    let watchdog: Duration?
    /// A batch running longer is named in `STATUS=` (`worker.slow_batch_warn`).
    let slowBatchWarn: Duration
    /// Finishes once the database answered, the schema is checked and every runner has started.
    let started: AsyncStream<Void>
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            for await _ in self.started {}
            guard !Task.isCancelled else { return }  // stopped before it started: never READY
            Notifier.ready(status: self.board.summaryLine(slowBatchWarn: self.slowBatchWarn))
            await self.report()
        }
        if Task.isShuttingDownGracefully {
            self.logger.info("Stopping.")
            Notifier.stopping()
        }
    }

    /// Keeps `STATUS=` current and pings the watchdog until cancelled.
    private func report() async {
        var lastStatus = self.board.summaryLine(slowBatchWarn: self.slowBatchWarn)  // sent with READY=1
        let clock = ContinuousClock()
        var lastPing = clock.now - .seconds(3600)
        var wasIdle = false
        let tick = min(self.watchdog.map { $0 / 4 } ?? .seconds(1), .seconds(1))
        while !Task.isCancelled {
            let line = self.board.summaryLine(slowBatchWarn: self.slowBatchWarn)
            if line != lastStatus {
                Notifier.status(line)
                lastStatus = line
            }
            // A runner waiting on the server is alive however long the statement runs; only a
            // runner whose loop stopped going round (or this task not running) starves the watchdog.
            if let watchdog, clock.now - lastPing >= watchdog / 2, self.board.allResponsive(within: watchdog / 2) {
                Notifier.watchdog()
                lastPing = clock.now
            }
            // After a catch-up the batches' memory is free but still resident: give it back once idle.
            let idle = self.board.all.allSatisfy { $0.state == .idle || $0.state == .standby }
            if idle && !wasIdle { MemoryTrimmer.trim() }
            wasIdle = idle
            try? await Task.sleep(for: tick)
        }
    }
}
