/// A condition that did not come true in time; its description says which.
public struct TimedOut: Error, CustomStringConvertible {
    public var what: String
    public var timeout: Duration
    public var description: String { "timed out after \(self.timeout) waiting for: \(self.what)" }
}

/// Checks `condition` every `interval` until it holds or `timeout` has passed.
/// - Returns: whether it held in time.
public func poll(
    timeout: Duration, every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Waits until `condition` holds. A test that calls it fails with the `TimedOut` message.
///
/// An error `condition` throws counts as "not yet" (a command run while a daemon starts, a
/// connection refused for a moment): it is rethrown only if it is still the answer at the
/// deadline.
/// - Throws: `TimedOut` after `timeout`, or the error `condition` threw on its last try.
public func eventually(
    _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        let last = ContinuousClock.now >= deadline
        do {
            if try await condition() { return }
            if last { throw TimedOut(what: what, timeout: timeout) }
        } catch let error where !last && !(error is CancellationError) {
            // Not yet: tried again below.
        }
        try await Task.sleep(for: interval)
    }
}
