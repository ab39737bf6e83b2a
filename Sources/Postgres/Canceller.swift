import CLibPQ
import Synchronization
import Dispatch

/// Sends a cancel request for the statement a connection is running.
///
/// `PQcancel` is thread-safe and may block (it opens a new connection to the server), so it runs
/// on a global queue, never on the connection's own queue (busy with the statement) nor on the
/// cooperative pool. The lock ties a cancel request to the statement in flight: the connection's
/// queue holds `running` while a statement runs, and a cancel is sent only while it is set,
/// so a late cancel can never hit the next statement.
final class Canceller: Sendable {
    // PGcancel is only touched with the lock held, so handing the state between threads is safe.
    private struct State: @unchecked Sendable {
        var handle: OpaquePointer?  // PGcancel *
        var running = false
    }
    private let state: Mutex<State>

    init(handle: OpaquePointer?) {
        self.state = Mutex(State(handle: handle))
    }

    deinit {
        self.state.withLock { state in
            if let handle = state.handle { PQfreeCancel(handle) }
        }
    }

    func begin() { self.state.withLock { $0.running = true } }
    func end() { self.state.withLock { $0.running = false } }

    /// Asks the server to cancel the running statement, if one is running.
    func cancel() {
        DispatchQueue.global().async {
            self.state.withLock { state in
                guard state.running, let handle = state.handle else { return }
                var buffer = [CChar](repeating: 0, count: 256)
                _ = PQcancel(handle, &buffer, Int32(buffer.count))
            }
        }
    }
}

extension Canceller {
    /// Installs the `PGcancel` of a (re)opened connection, or clears it on close.
    func replace(handle: OpaquePointer?) {
        self.state.withLock { state in
            if let old = state.handle { PQfreeCancel(old) }
            state.handle = handle
        }
    }
}
