import Logging
import Postgres
@testable import Projections
import Synchronization
import TestSupport
import TestTraits
import Testing

/// `PeriodicTask`'s pacing against a real server: a borrow that succeeds followed by the same
/// failure must not start the backoff over.
@Suite(.database, .runsAlone(.timed), .timeLimit(.minutes(1)))
struct PeriodicTaskTests {
    struct TickFailed: Error {}

    @Test("connects that succeed while every tick fails keep backing off; a tick that succeeds starts the backoff over")
    func backsOffAcrossReconnects() async throws {
        let db = try await TestDatabase.fresh("periodic")
        let attempts = Mutex<[ContinuousClock.Instant]>([])
        let task = PeriodicTask(
            role: "Test duty", interval: .milliseconds(10), pool: ConnectionPool(database: db.configuration, maxConnections: 3),
            backoff: Backoff(initial: .milliseconds(50), maximum: .seconds(10), jitter: 1...1), logger: Logger(label: "test"), level: .debug)
        let running = Task { await task.run { _ in attempts.withLock { $0.append(.now) }; throw TickFailed() } }
        try await eventually("six failing ticks", timeout: .seconds(20), every: .milliseconds(10)) { attempts.withLock { $0.count } >= 6 }
        running.cancel()
        await running.value
        let times = attempts.withLock { $0 }
        // Backing off, the delays before the reconnects are 50, 100, 200, 400 and 800 ms: each gap
        // between ticks is at least its delay, however slow the connects (a loaded machine only
        // adds to a gap). Starting over after every connect, every gap would be about 50 ms.
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        for (i, gap) in gaps.prefix(5).enumerated() {
            #expect(gap >= .milliseconds(50 << i) - .milliseconds(5), "gap \(i) is shorter than its backoff: \(gaps)")
        }
    }

    @Test("after a successful tick a later failure waits the initial delay again")
    func resetsAfterRealSuccess() async throws {
        let db = try await TestDatabase.fresh("periodic_ok")
        let attempts = Mutex<[ContinuousClock.Instant]>([])
        let task = PeriodicTask(
            role: "Test duty", interval: .milliseconds(10), pool: ConnectionPool(database: db.configuration, maxConnections: 3),
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
        // Ticks 1-4 fail, backing off 50, 100, 200 and 400 ms (plus a connect each); tick 5
        // succeeds, and tick 6, `interval` later, fails. Tick 7 then comes after the initial delay
        // and a connect: sooner than tick 5 came after tick 4 (without the reset it would wait
        // 800 ms). Compared with a gap of the same run, this holds however slow the connects are.
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(gaps[3] >= .milliseconds(395), "\(gaps)")
        #expect(gaps[5] < gaps[3], "the failure after a success did not start the backoff over: \(gaps)")
    }
}
