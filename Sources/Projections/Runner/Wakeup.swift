import Synchronization

/// A level-triggered wake-up for one runner: `signal()` makes the current or next `wait` return.
///
/// A signal is never lost: it either resumes a wait that is still waiting (which then returns
/// true) or stays pending for the next one. Each wait has one continuation, resumed exactly once
/// by whichever comes first (a signal, its timer, cancellation); the state under the mutex decides.
public final class Wakeup: Sendable {
    private struct State {
        /// A signal no wait has consumed yet.
        var pending = false
        /// The waits still waiting, by id; whoever removes one resumes it.
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Wakes the runner now (or its next wait, if it is busy).
    public func signal() {
        let waiters = self.state.withLock { state in
            guard !state.waiters.isEmpty else {
                state.pending = true
                return [CheckedContinuation<Bool, Never>]()
            }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Waits for a signal or `timeout`, whichever comes first. - Returns: true when signalled.
    public func wait(timeout: Duration) async -> Bool {
        let id = self.state.withLock { state -> UInt64? in
            if state.pending {
                state.pending = false
                return nil
            }
            defer { state.nextID &+= 1 }
            return state.nextID
        }
        guard let id else { return true }
        return await withTaskGroup(of: Void.self) { timers in
            let signalled = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let immediate = self.state.withLock { state -> Bool? in
                        if state.pending {  // signalled since the check above
                            state.pending = false
                            return true
                        }
                        if Task.isCancelled { return false }
                        state.waiters[id] = continuation
                        return nil
                    }
                    if let immediate { return continuation.resume(returning: immediate) }
                    // Started only once the continuation is registered, so it always finds it (or finds it resumed).
                    timers.addTask {
                        try? await Task.sleep(for: timeout)
                        self.end(id)
                    }
                }
            } onCancel: {
                self.end(id)
            }
            timers.cancelAll()  // the timer's sleep ends now; the group waits for it
            return signalled
        }
    }

    /// Ends wait `id` unsignalled (timeout or cancellation), unless a signal already ended it.
    private func end(_ id: UInt64) {
        self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
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
