import Logging
import ServiceLifecycle
import Synchronization
@testable import Systemd
import Testing

@Suite struct HealthNotificationsTests {
    let start = ContinuousClock.now

    @Test("READY=1 carries the first status; an unchanged status is not sent again")
    func statusOnlyWhenChanged() {
        var notifications = HealthNotifications(watchdog: nil)
        #expect(notifications.ready(status: "catching up\nlag 5") == "READY=1\nSTATUS=catching up lag 5")
        #expect(notifications.due(at: self.start, status: "catching up\nlag 5") { _ in true } == nil)
        #expect(notifications.due(at: self.start + .seconds(1), status: "idle") { _ in true } == "STATUS=idle")
        #expect(notifications.due(at: self.start + .seconds(2), status: "idle") { _ in true } == nil)
    }

    @Test("the watchdog is fed every half interval while the source is responsive, and asked about half the interval")
    func watchdogEveryHalfInterval() {
        var notifications = HealthNotifications(watchdog: .seconds(4))
        _ = notifications.ready(status: "s")
        var asked: [Duration] = []
        #expect(notifications.due(at: self.start, status: "s") { asked.append($0); return true } == "WATCHDOG=1")
        #expect(notifications.due(at: self.start + .seconds(1), status: "s") { _ in true } == nil)
        #expect(notifications.due(at: self.start + .seconds(2), status: "t") { _ in true } == "STATUS=t\nWATCHDOG=1")
        #expect(asked == [.seconds(2)])
        #expect(notifications.tick == .seconds(1))
        #expect(HealthNotifications(watchdog: .seconds(2)).tick == .milliseconds(500))
    }

    @Test("a source that stopped going round starves the watchdog until it recovers")
    func unresponsiveStarves() {
        var notifications = HealthNotifications(watchdog: .seconds(2))
        _ = notifications.ready(status: "s")
        #expect(notifications.due(at: self.start, status: "s") { _ in true } == "WATCHDOG=1")
        #expect(notifications.due(at: self.start + .seconds(1), status: "s") { _ in false } == nil)
        #expect(notifications.due(at: self.start + .seconds(5), status: "s") { _ in false } == nil)
        #expect(notifications.due(at: self.start + .seconds(6), status: "s") { _ in true } == "WATCHDOG=1")
    }

    @Test("without a watchdog nothing but status changes is sent")
    func noWatchdog() {
        var notifications = HealthNotifications(watchdog: nil)
        _ = notifications.ready(status: "s")
        #expect(notifications.due(at: self.start + .seconds(3600), status: "s") { _ in Issue.record("asked"); return true } == nil)
    }

    final class FixedSource: HealthSource {
        let line: Mutex<String>
        init(_ line: String) { self.line = Mutex(line) }
        func summary() -> String { self.line.withLock { $0 } }
        func isResponsive(within interval: Duration) -> Bool { true }
    }

    @Test("the reporter says READY=1 only after start, keeps STATUS= current and says STOPPING=1 on graceful shutdown")
    func reporterLifecycle() async throws {
        let sent = Mutex<[String]>([])
        let source = FixedSource("starting")
        let (started, markStarted) = AsyncStream.makeStream(of: Void.self)
        let reporter = HealthReporter(
            source: source, watchdog: .milliseconds(400), started: started, logger: Logger(label: "test")
        ) { message in sent.withLock { $0.append(message) } }
        let group = ServiceGroup(services: [reporter], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(200))
            #expect(sent.withLock { $0 }.isEmpty, "READY=1 before the work started")
            markStarted.finish()
            try await Self.poll { sent.withLock { $0.contains("READY=1\nSTATUS=starting") } }
            source.line.withLock { $0 = "idle" }
            try await Self.poll { sent.withLock { $0.contains { $0.hasPrefix("STATUS=idle") } } }
            try await Self.poll { sent.withLock { $0.filter { $0.contains("WATCHDOG=1") }.count >= 2 } }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(sent.withLock { $0.last } == "STOPPING=1")
    }

    static func poll(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
