import Synchronization
import TestSupport
import Testing

/// The harness's wait: an error is "not yet" until the deadline, then it is the answer.
@Suite(.timeLimit(.minutes(1)))
struct EventuallyTests {
    struct Flaky: Error {}

    @Test("errors before the condition holds are tried again")
    func errorsAreRetried() async throws {
        let tries = Mutex(0)
        try await eventually("the third try", timeout: .seconds(10), every: .milliseconds(1)) {
            let count = tries.withLock { $0 += 1; return $0 }
            if count < 3 { throw Flaky() }
            return true
        }
        #expect(tries.withLock { $0 } == 3)
    }

    @Test("an error still thrown at the deadline is rethrown; a condition still false is TimedOut")
    func deadline() async throws {
        await #expect(throws: Flaky.self) {
            try await eventually("never", timeout: .milliseconds(50), every: .milliseconds(5)) { throw Flaky() }
        }
        let timedOut = await #expect(throws: TimedOut.self) {
            try await eventually("never true", timeout: .milliseconds(50), every: .milliseconds(5)) { false }
        }
        #expect(timedOut?.description.contains("never true") == true)
    }
}
