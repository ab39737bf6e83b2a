import Synchronization

/// A level-triggered wake-up for one runner: `signal()` makes the current or next `wait` return.
public final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    public init() {}

    /// Wakes the runner now (or its next wait, if it is busy).
    public func signal() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Waits for a signal or `timeout`, whichever comes first. - Returns: true when signalled.
    public func wait(timeout: Duration) async -> Bool {
        if self.state.withLock({ state in
            defer { state.pending = false }
            return state.pending
        }) {
            return true
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let resumeNow = self.state.withLock { state -> Bool in
                            if state.pending || Task.isCancelled {
                                state.pending = false
                                return true
                            }
                            state.waiter = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                        defer { state.waiter = nil }
                        return state.waiter
                    }
                    waiter?.resume()
                }
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// Wakes every runner at once: the listener calls it on each notification and after reconnecting.
public final class WakeupBroadcaster: Sendable {
    private let wakeups: Mutex<[Wakeup]> = Mutex([])

    public init() {}

    public func register(_ wakeup: Wakeup) { self.wakeups.withLock { $0.append(wakeup) } }

    public func signalAll() {
        for wakeup in self.wakeups.withLock({ $0 }) { wakeup.signal() }
    }
}
