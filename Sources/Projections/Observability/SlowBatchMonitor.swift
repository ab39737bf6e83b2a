import Logging

/// Warns once per batch that has been running longer than `slow_batch_warn`.
///
/// A long batch is not a hang — the runner waits on the server, and the watchdog keeps being
/// fed — but an operator wants to know: a statement stuck behind a lock (e.g. a `reset` in
/// progress), a handler that got slow. The same batches show in `STATUS=` and in `status`.
struct SlowBatchMonitor: Sendable {
    let board: StatusBoard
    let threshold: Duration
    let logger: Logger

    /// Checks every second until cancelled.
    func run() async {
        var warned: Set<Key> = []
        while !Task.isCancelled {
            warned = self.check(warned: warned)
            try? await Task.sleep(for: .seconds(1))
        }
    }

    struct Key: Hashable {
        var name: String
        var since: ContinuousClock.Instant
    }

    /// Logs the slow batches not warned about yet. - Returns: the batches warned about that still run.
    func check(warned: Set<Key>) -> Set<Key> {
        var still: Set<Key> = []
        for status in self.board.all {
            guard let since = status.busySince else { continue }
            let key = Key(name: status.name, since: since)
            let running = ContinuousClock.now - since
            guard running > self.threshold else { continue }
            if !warned.contains(key) {
                self.logger.warning(
                    "A batch has been running longer than slow_batch_warn; it is waiting on the database (a lock, a slow statement).",
                    metadata: [
                        "projection": "\(status.name)", "batch.running": "\(running)", "position": "\(status.position)",
                        "slow_batch_warn": "\(self.threshold)",
                    ])
            }
            still.insert(key)
        }
        return still
    }
}
