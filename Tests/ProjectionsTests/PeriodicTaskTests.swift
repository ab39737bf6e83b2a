import Logging
import Postgres
@testable import Projections
import Synchronization
import TestSupport
import Testing

/// `PeriodicTask`'s pacing against a real server: a connection that succeeds followed by the
/// same failure must not start the backoff over.
@Suite(.timeLimit(.minutes(1)))
struct PeriodicTaskTests {
    struct TickFailed: Error {}

    @Test("connects that succeed while every tick fails keep backing off; a tick that succeeds starts the backoff over")
    func backsOffAcrossReconnects() async throws {
        let db = try await TestDatabase.fresh("periodic")
        let attempts = Mutex<[ContinuousClock.Instant]>([])
        let task = PeriodicTask(
            role: "Test duty", interval: .milliseconds(10), database: db.configuration,
            backoff: Backoff(initial: .milliseconds(50), maximum: .seconds(10), jitter: 1...1), logger: Logger(label: "test"), level: .debug)
        let running = Task { await task.run { _ in attempts.withLock { $0.append(.now) }; throw TickFailed() } }
        try await Task.sleep(for: .milliseconds(2500))
        running.cancel()
        await running.value
        let times = attempts.withLock { $0 }
        // Backing off: ticks at about 0, 50, 150, 350, 750 and 1550 ms (plus the connects): 6 or 7
        // in 2.5 s. Starting over after every connect, a tick every ~50 ms: dozens.
        #expect((4...8).contains(times.count), "\(times.count) failing ticks in 2.5 s")
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(gaps.count >= 4 && gaps[gaps.count - 1] > gaps[0] * 3, "the delays do not grow: \(gaps)")
    }

    @Test("after a successful tick a later failure waits the initial delay again")
    func resetsAfterRealSuccess() async throws {
        let db = try await TestDatabase.fresh("periodic_ok")
        let attempts = Mutex<[ContinuousClock.Instant]>([])
        let task = PeriodicTask(
            role: "Test duty", interval: .milliseconds(10), database: db.configuration,
            backoff: Backoff(initial: .milliseconds(50), maximum: .seconds(10), jitter: 1...1), logger: Logger(label: "test"), level: .debug)
        // Fails four times (backing off to 400 ms), succeeds once, then fails again.
        let running = Task {
            await task.run { _ in
                let count = attempts.withLock { $0.append(.now); return $0.count }
                if count != 5 { throw TickFailed() }
            }
        }
        try await eventually("seven ticks", timeout: .seconds(10), every: .milliseconds(10)) { attempts.withLock { $0.count } >= 7 }
        running.cancel()
        await running.value
        let times = attempts.withLock { $0 }
        // Tick 6 comes `interval` after the success; tick 7 after the initial delay, not 800 ms.
        #expect(times[6] - times[5] < .milliseconds(400), "\(zip(times.dropFirst(), times).map { $0 - $1 })")
        #expect(times[4] - times[3] >= .milliseconds(350))
    }
}
