import Dispatch

/// The serial executor of one connection: a private serial dispatch queue.
///
/// libpq's calls block the calling thread. Running them on this queue keeps them off Swift's
/// cooperative pool (two threads on a 2-core machine, shared by every task): a connection
/// stuck in a slow statement occupies only its own queue's thread, never a pool thread.
/// Serial queues target libdispatch's overcommitting global queue, which starts another thread
/// when one blocks, so N connections blocked at once cost N threads and delay nobody else.
final class ConnectionExecutor: SerialExecutor {
    private let queue: DispatchQueue

    init(label: String) {
        self.queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = self.asUnownedSerialExecutor()
        self.queue.async { job.runSynchronously(on: executor) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
