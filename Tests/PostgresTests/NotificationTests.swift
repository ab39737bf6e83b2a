import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .runsAlone(.timed), .timeLimit(.minutes(1)))
struct NotificationTests {
    @Test("a NOTIFY from another connection arrives on the listener's sequence")
    func receivesNotify() async throws {
        let db = try await TestDatabase.fresh("notify")
        let listener = try await db.connect()
        let sender = try await db.connect()
        try await listener.listen("Events Channel")
        let received = Task {
            var seen: [PostgresNotification] = []
            for try await notification in listener.notifications() {
                seen.append(notification)
                if seen.count == 2 { break }
            }
            return seen
        }
        try await Task.sleep(for: .milliseconds(100))
        try await sender.query("SELECT pg_notify('Events Channel', $1)", ["first"])
        try await sender.transaction { tx in try await tx.query(#"NOTIFY "Events Channel", 'second'"#) }
        let seen = try await received.value
        #expect(seen.map(\.payload) == ["first", "second"])
        #expect(seen.allSatisfy { $0.channel == "Events Channel" })
        #expect(seen.first?.senderPID == (await sender.backendPID))
    }

    @Test("cancelling the waiting task ends the sequence promptly, and the connection stays usable")
    func cancellationEndsWait() async throws {
        let db = try await TestDatabase.fresh("notifycancel")
        let listener = try await db.connect()
        try await listener.listen("quiet")
        let waiting = Task {
            var count = 0
            for try await _ in listener.notifications() { count += 1 }
            return count
        }
        try await Task.sleep(for: .milliseconds(200))
        let clock = ContinuousClock()
        let start = clock.now
        waiting.cancel()
        #expect(try await waiting.value == 0)
        #expect(clock.now - start < .seconds(1))
        #expect(try await listener.query("SELECT 1")[0].decode(Int32.self, at: 0) == 1)
    }

    @Test("a listener whose backend is terminated throws connection lost")
    func listenerLoss() async throws {
        let db = try await TestDatabase.fresh("notifyloss")
        let listener = try await db.connect()
        let admin = try await db.connect()
        try await listener.listen("x")
        let pid = await listener.backendPID
        let waiting = Task { for try await _ in listener.notifications() {} }
        try await Task.sleep(for: .milliseconds(100))
        try await admin.query("SELECT pg_terminate_backend($1)", [Int32(pid)])
        let error = await #expect(throws: PostgresError.self) { try await waiting.value }
        #expect(error?.isConnectionLost == true)
    }
}
