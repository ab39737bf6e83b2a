import Synchronization

/// Holds the worker back until the HTTP listener has bound its address (or failed to), so that
/// `READY=1` is never sent by an instance whose listener cannot start. Open from the start when
/// there is no listener.
final class ListenerGate: Sendable {
    enum Outcome: Sendable {
        case bound
        /// The listener ended without binding (a shutdown meanwhile).
        case ended
        case failed(any Error)
    }

    private enum State {
        case waiting([CheckedContinuation<Outcome, Never>])
        case done(Outcome)
    }

    private let state: Mutex<State>

    init(enabled: Bool) { self.state = Mutex(enabled ? .waiting([]) : .done(.bound)) }

    /// True once the listener is bound; false when it ended without binding.
    /// - Throws: the listener's own error (e.g. the `ConfigurationError` of a port in use), so
    ///   that whichever service ends first, the daemon exits with it.
    func wait() async throws -> Bool {
        let outcome = await withCheckedContinuation { continuation in
            let done = self.state.withLock { state -> Outcome? in
                switch state {
                case .waiting(let waiting):
                    state = .waiting(waiting + [continuation])
                    return nil
                case .done(let outcome):
                    return outcome
                }
            }
            if let done { continuation.resume(returning: done) }
        }
        switch outcome {
        case .bound: return true
        case .ended: return false
        case .failed(let error): throw error
        }
    }

    /// Settles the outcome; later calls change nothing.
    func finish(_ outcome: Outcome) {
        let waiting = self.state.withLock { state -> [CheckedContinuation<Outcome, Never>] in
            guard case .waiting(let waiting) = state else { return [] }
            state = .done(outcome)
            return waiting
        }
        for continuation in waiting { continuation.resume(returning: outcome) }
    }
}
