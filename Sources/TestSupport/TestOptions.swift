import Projections

/// Runtime options for tests: short delays, so that idle and failure paths finish quickly.
public func testOptions(_ change: (inout RuntimeOptions) -> Void = { _ in }) -> RuntimeOptions {
    var options = RuntimeOptions()
    options.pollInterval = .milliseconds(100)
    options.maxPollInterval = .milliseconds(500)
    options.handlerRetries = 2
    options.handlerRetryDelay = .milliseconds(10)
    options.reconnectDelay = .milliseconds(20)
    options.maxReconnectDelay = .seconds(1)
    options.heartbeatInterval = .milliseconds(500)
    change(&options)
    return options
}
