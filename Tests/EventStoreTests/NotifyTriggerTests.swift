import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

/// The notify trigger the migration installs, with channel names the configuration accepts
/// and with ones it refuses (a library caller can still pass those to `Migration.sql`).
@Suite(.database, .timeLimit(.minutes(1)))
struct NotifyTriggerTests {
    /// Migrates a fresh database with the trigger on `channel` (on a session with
    /// `standard_conforming_strings` as given), LISTENs on it, appends one event and returns the
    /// notifications that arrived.
    func notifications(on channel: String, label: String, standardStrings: Bool = true) async throws
        -> (PostgresConnection, [PostgresNotification])
    {
        var schema = Schema()
        schema.notifyTrigger = true
        schema.notifyChannel = channel
        let db = try await TestDatabase.fresh(label)
        let connection = try await db.connect()
        try await connection.query("SET standard_conforming_strings = \(standardStrings ? "on" : "off")")
        try await connection.execute(script: Migration.sql(for: schema))
        let listener = try await db.connect()
        try await listener.listen(channel)
        let received = Task {
            for try await notification in listener.notifications() { return [notification] }
            return []
        }
        try await connection.transaction { tx in try await EventStore().append([orderEvent("o1")], expected: .noStream, in: tx) }
        return (connection, try await received.value)
    }

    @Test("an odd but valid channel (case, dot, hyphen) gets the trigger's notification")
    func oddValidChannel() async throws {
        let channel = "Orders.Events-v2"
        let (_, received) = try await notifications(on: channel, label: "notify_odd")
        #expect(received.map(\.channel) == [channel])
        #expect(received.map(\.payload) == ["1"])
    }

    @Test(
        "a channel holding the body's dollar tag, a backslash and quotes stays a string: no SQL runs from it",
        arguments: [true, false])
    func hostileChannel(standardStrings: Bool) async throws {
        let channel = #"x$projectionist$\'; DROP TABLE events; --"#
        let (connection, received) = try await notifications(on: channel, label: "notify_hostile", standardStrings: standardStrings)
        #expect(received.map(\.channel) == [channel])
        #expect(try await connection.query("SELECT count(*) FROM events")[0].decode(Int64.self, at: 0) == 1)
    }
}
