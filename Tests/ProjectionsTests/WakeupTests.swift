import Projections
import Testing

/// `Wakeup` on its own: no server, no runner.
@Suite(.timeLimit(.minutes(1)))
struct WakeupTests {
    @Test("a signal racing a very short timeout is seen by that wait or the next one, never lost")
    func signalRacingTimeoutIsNeverLost() async {
        var lost = 0
        var wokenByThatWait = 0
        for iteration in 0..<20_000 {
            let wakeup = Wakeup()
            // Timeouts of 0–20 µs end while the signal is on its way: the window the race lives in.
            async let first = wakeup.wait(timeout: .nanoseconds((iteration % 21) * 1_000))
            await Task.yield()
            wakeup.signal()
            if await first {
                wokenByThatWait += 1
            } else if await !wakeup.wait(timeout: .seconds(2)) {
                lost += 1
                break  // one is enough; each costs the full timeout
            }
        }
        #expect(lost == 0, "a signal was lost (after \(wokenByThatWait) waits woken by it)")
    }

    @Test("after signal() the next long wait returns true at once")
    func pendingSignalEndsTheNextWait() async {
        let wakeup = Wakeup()
        wakeup.signal()
        let clock = ContinuousClock()
        let start = clock.now
        #expect(await wakeup.wait(timeout: .seconds(10)))
        #expect(clock.now - start < .seconds(1))
    }

    @Test("signals do not accumulate: one signal ends one wait")
    func oneSignalOneWait() async {
        let wakeup = Wakeup()
        wakeup.signal()
        wakeup.signal()
        #expect(await wakeup.wait(timeout: .seconds(10)))
        #expect(await !wakeup.wait(timeout: .milliseconds(20)))
    }

    @Test("a signal during a long wait ends it with true")
    func signalDuringWait() async {
        let wakeup = Wakeup()
        let clock = ContinuousClock()
        let start = clock.now
        async let woke = wakeup.wait(timeout: .seconds(10))
        try? await Task.sleep(for: .milliseconds(50))
        wakeup.signal()
        #expect(await woke)
        #expect(clock.now - start < .seconds(5))
    }

    @Test("without a signal the wait times out with false")
    func timesOut() async {
        let wakeup = Wakeup()
        let clock = ContinuousClock()
        let start = clock.now
        #expect(await !wakeup.wait(timeout: .milliseconds(50)))
        #expect(clock.now - start >= .milliseconds(50))
    }

    @Test("cancelling the waiting task ends the wait with false, and a later signal still counts")
    func cancellation() async {
        let wakeup = Wakeup()
        let clock = ContinuousClock()
        let start = clock.now
        let waiting = Task { await wakeup.wait(timeout: .seconds(10)) }
        try? await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        #expect(await !waiting.value)
        #expect(clock.now - start < .seconds(5))
        wakeup.signal()
        #expect(await wakeup.wait(timeout: .seconds(10)))
    }

    @Test("the broadcaster wakes every registered wakeup")
    func broadcaster() async {
        let broadcaster = WakeupBroadcaster()
        let wakeups = [Wakeup(), Wakeup(), Wakeup()]
        wakeups.forEach(broadcaster.register)
        let unregistered = Wakeup()
        broadcaster.signalAll()
        for wakeup in wakeups { #expect(await wakeup.wait(timeout: .seconds(10))) }
        #expect(await !unregistered.wait(timeout: .milliseconds(20)))
    }
}
