import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// A runner whose heartbeat waits on a locked checkpoint row (`reset` holds it during its SQL)
/// waits on the server: it is alive, and the watchdog and `/healthz` go on.
@Suite(.database, .runsAlone(.timed), .timeLimit(.minutes(2)))
struct HeartbeatLivenessTests {
    @Test("an idle runner stays responsive while another transaction holds its checkpoint row past the heartbeat interval")
    func heartbeatBlockedByRowLock() async throws {
        let db = try await projectionDatabase("heartbeat_lock")
        let connection = try await db.connect()
        let last = try await appendOrder("a", lines: 1, on: connection).last!
        let options = testOptions {
            $0.heartbeatInterval = .milliseconds(300)
            $0.beatInterval = .milliseconds(100)
            $0.pollInterval = .seconds(30)
            $0.maxPollInterval = .seconds(30)
            $0.headPollInterval = nil
        }
        let running = try RunningWorker(db, [CounterProjection(name: "cnt")], options: options)
        try await eventually("idle at the head") { try await checkpoint("cnt", on: connection) == last && running.status("cnt")?.state == .idle }
        let holder = try await db.connect()
        try await holder.query("BEGIN")
        try await holder.query("SELECT * FROM consumer_checkpoints WHERE consumer_name = 'cnt' FOR UPDATE")
        // Several heartbeats' worth: each one now waits on the lock.
        var unresponsive = 0
        let clock = ContinuousClock()
        let until = clock.now + .seconds(3)
        while clock.now < until {
            if !running.worker.board.allResponsive(within: .seconds(1)) { unresponsive += 1 }
            try await Task.sleep(for: .milliseconds(50))
        }
        let blocked = try await connection.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%consumer_checkpoints%'")[0].decode(Int64.self, at: 0)
        try await holder.query("ROLLBACK")
        #expect(blocked >= 1, "the heartbeat did not wait on the row lock: the test proves nothing")
        #expect(unresponsive == 0, "the runner looked hung while its heartbeat waited on the server")
        try await eventually("responsive after the lock went") { running.worker.board.allResponsive(within: .seconds(1)) }
        await running.stop()
    }
}
