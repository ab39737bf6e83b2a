import EventStore
import Foundation
import Postgres
@testable import Projections
import TestSupport
import TestTraits
import Testing

/// Several workers (instances) on one database, in this process: they share the units through
/// leases, every event is applied exactly once, and an instance whose lease was taken never
/// commits again.
@Suite(.database, .timeLimit(.minutes(2)))
struct LeaseTests {
    static func options(_ instance: UUID = UUID()) -> RuntimeOptions {
        testOptions {
            $0.instanceID = instance
            $0.leaseTTL = .seconds(2)
            $0.batchSize = 50
        }
    }

    static func expectExactlyOnce(_ name: String, through last: Int64, on connection: PostgresConnection) async throws {
        let numbers = try await CounterProjection.numbers(name, on: connection)
        #expect(numbers.n == last, "every event applied once: n")
        #expect(numbers.rows == last, "no event applied twice: log rows")
        #expect(numbers.distinct == last, "no event missing: distinct positions")
    }

    // Timed: the handover must beat the 2 s lease, which the parallel phase's load could blur.
    @Test("two workers split four partitions and a projection 3 + 2 or 2 + 3, apply every event once, and one stopping hands its units over", .runsAlone(.timed))
    func shareAndHandOver() async throws {
        let db = try await projectionDatabase("lease_share")
        let connection = try await db.connect()
        let projections: [any Projection] = [CounterProjection(name: "c", partitions: 4), CounterProjection(name: "d")]
        _ = try await appendOrders(100, prefix: "a", on: connection)
        let first = try RunningWorker(db, projections, options: Self.options())
        let second = try RunningWorker(db, projections, options: Self.options())
        try await eventually("the units are shared 3 + 2") {
            Set([first.worker.leases.count(), second.worker.leases.count()]) == [2, 3]
        }
        var last = try await head(on: connection)
        try await eventually("caught up") {
            let positions = try await CheckpointStore().records(first.worker.units.map(\.name), on: connection).map(\.position)
            return positions.count == 5 && positions.allSatisfy { $0 == last }
        }
        try await Self.expectExactlyOnce("c", through: last, on: connection)
        try await Self.expectExactlyOnce("d", through: last, on: connection)

        // A clean stop releases at once: the other worker takes every unit well within the lease.
        let clock = ContinuousClock()
        let stopped = clock.now
        await first.stop()
        try await eventually("the second worker holds every unit", timeout: .seconds(10), every: .milliseconds(10)) {
            second.worker.leases.count() == 5
        }
        let handover = clock.now - stopped
        #expect(handover < .seconds(2), "handover took \(handover)")
        last = try await appendOrders(50, prefix: "b", on: connection)
        try await eventually("caught up again") {
            try await CheckpointStore().records(second.worker.units.map(\.name), on: connection).allSatisfy { $0.position == last }
        }
        await second.stop()
        try await Self.expectExactlyOnce("c", through: last, on: connection)
        try await Self.expectExactlyOnce("d", through: last, on: connection)
    }

    @Test("fencing alone stops a stale owner: with its lease still held, a newer token on the checkpoint row makes it stand by and commit nothing; it resumes under a newer lease")
    func stolenLeaseFences() async throws {
        let db = try await projectionDatabase("lease_fence")
        let connection = try await db.connect()
        _ = try await appendOrders(20, prefix: "a", on: connection)
        let instance = UUID()
        let running = try RunningWorker(db, [CounterProjection(name: "c")], options: Self.options(instance))
        var last = try await head(on: connection)
        try await eventually("caught up") { try await checkpoint("c", on: connection) == last }
        let assignment = {
            let row = try await connection.query(
                "SELECT worker_id::text, fencing_token, lease_expires_at > now() FROM consumer_assignments WHERE consumer_name = 'c'")[0]
            return (worker: try row.decode(String.self, at: 0), token: try row.decode(Int64.self, at: 1), live: try row.decode(Bool.self, at: 2))
        }
        let held = try await assignment()
        #expect(held.worker.lowercased() == instance.uuidString.lowercased() && held.live)
        // A newer owner's first batch raised the checkpoint row's token. The lease itself is left
        // alone: the worker's coordinator keeps renewing it, so it never sees the lease lost, and only
        // the batch's fencing step can stop the runner.
        try await connection.query("UPDATE consumer_checkpoints SET fencing_token = $1 WHERE consumer_name = 'c'", [held.token + 1])
        let fencedAt = try await checkpoint("c", on: connection)
        _ = try await appendOrders(20, prefix: "b", on: connection)
        try await eventually("the runner, refused by the fencing step, stands by") { running.status("c")?.state == .standby }
        try await Task.sleep(for: .seconds(2))  // its retries (the coordinator hands the same token back every tick) are refused too
        let still = try await assignment()
        #expect(
            still.worker == held.worker && still.token == held.token && still.live,
            "the lease stayed with the worker throughout (this is fencing, not lease loss): \(still)")
        #expect(try await checkpoint("c", on: connection) == fencedAt, "a fenced runner committed a batch")
        #expect(try await CounterProjection.numbers("c", on: connection).n == fencedAt)
        // The newer owner goes away: the lease is free, the worker claims it with a token above the row's.
        try await connection.query("UPDATE consumer_assignments SET worker_id = NULL, lease_expires_at = NULL WHERE consumer_name = 'c'")
        last = try await head(on: connection)
        try await eventually("caught up after taking the unit back") { try await checkpoint("c", on: connection) == last }
        await running.stop()
        try await Self.expectExactlyOnce("c", through: last, on: connection)
    }
}
