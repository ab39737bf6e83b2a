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
/// - Throws: `TimedOut` after `timeout`, or what `condition` threw.
public func eventually(
    _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    guard try await poll(timeout: timeout, every: interval, condition) else { throw TimedOut(what: what, timeout: timeout) }
}
