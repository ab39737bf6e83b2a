import Projections
import Systemd

/// The worker's status board as the health reporter's source: the summary names slow batches
/// (`worker.slow_batch_warn`); a runner waiting on the server counts as responsive however long
/// its statement runs, so only a loop that stopped going round starves the watchdog.
struct WorkerHealth: HealthSource {
    let board: StatusBoard
    let slowBatchWarn: Duration

    func summary() -> String { self.board.summaryLine(slowBatchWarn: self.slowBatchWarn) }
    func isResponsive(within interval: Duration) -> Bool { self.board.allResponsive(within: interval) }
}
