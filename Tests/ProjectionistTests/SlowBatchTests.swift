import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// A long statement is not a hang: under the unit's watchdog, a batch that runs
/// longer than the watchdog interval keeps the watchdog fed, and past `slow_batch_warn` it is
/// reported in `STATUS=`, in `status` and in the log.
@Suite(.database, .timeLimit(.minutes(2)))
struct SlowBatchTests {
    @Test("a handler sleeping 20 s under WATCHDOG_USEC=2s: WATCHDOG=1 keeps coming, STATUS=, status and the log name the slow batch")
    func slowBatchIsNoHang() async throws {
        let db = try await TestDatabase.fresh("slow_batch")
        let config = daemonConfig(
            db, worker: "  slow_batch_warn: 1s",
            extra: """
                  - name: sleepy
                    handlers:
                      OrderConfirmed: SELECT pg_sleep(20) WHERE $global_position > 0
                """)
        defer { TemporaryFile.remove(config) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", config]).status == 0)
        let notify = try NotifySocket()
        defer { notify.close() }
        let daemon = try ProjectionistProcess.start(
            ["run", "--config", config], environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": nil])
        try await eventually("READY=1") { notify.lines.contains("READY=1") }
        let connection = try await db.connect()
        let positions = try await appendOrder("slow", lines: 0, on: connection)

        try await eventually("STATUS= names the slow batch", timeout: .seconds(15)) {
            notify.lines.contains { $0.hasPrefix("STATUS=") && $0.contains("slow batch: sleepy running") }
        }
        // The batch still runs (20 s in all, so a loaded machine still checks within it): the watchdog is fed meanwhile, about every second.
        let pingsBefore = notify.lines.filter { $0 == "WATCHDOG=1" }.count
        let json = try await statusJSON(config)
        let sleepy = projectionState(json, "sleepy")
        #expect((sleepy["slow_batch_seconds"] as? Int ?? 0) >= 1, "\(sleepy)")
        #expect(projectionState(json)["slow_batch_seconds"] is NSNull)
        let table = try await ProjectionistProcess.run(["status", "--config", config])
        #expect(table.stdout.contains("(slow_batch_warn)"), "\(table.stdout)")
        try await eventually("two watchdog pings while the batch runs", timeout: .seconds(10)) {
            notify.lines.filter { $0 == "WATCHDOG=1" }.count - pingsBefore >= 2
        }
        #expect((try await CheckpointStore().position("sleepy", on: connection) ?? 0) < positions.last!, "the pings came while the batch ran")

        try await eventually("the slow batch commits", timeout: .seconds(40)) {
            try await CheckpointStore().position("sleepy", on: connection) == positions.last!
        }
        #expect(projectionState(try await statusJSON(config), "sleepy")["slow_batch_seconds"] is NSNull)
        daemon.signal(SIGTERM)
        let exit = await daemon.finish()
        #expect(exit.status == 0, "stderr: \(exit.stderr)")
        #expect(exit.stderr.contains("slow_batch_warn"), "\(exit.stderr)")
        #expect(exit.stderr.contains("projection=sleepy"), "\(exit.stderr)")
    }
}
