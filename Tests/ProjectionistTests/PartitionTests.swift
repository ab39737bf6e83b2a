import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(2)))
struct PartitionTests {
    @Test("the partition hash: every event in exactly one partition, one aggregate in one, values pinned across versions")
    func hash() async throws {
        let db = try await TestDatabase.migrated("partition_hash")
        let connection = try await db.connect()
        _ = try await Seeder.seedOrders(500, on: connection)
        let expression = WorkUnit.partitionExpression(count: "4", layout: .aggregate)
        let row = try await connection.query(
            """
            SELECT count(*), count(DISTINCT \(expression)),
                   (SELECT count(*) FROM (SELECT aggregate_id FROM events GROUP BY aggregate_type, aggregate_id
                                          HAVING count(DISTINCT \(expression)) > 1) AS split),
                   min(\(expression)), max(\(expression))
            FROM events
            """)[0]
        #expect(try row.decode(Int64.self, at: 1) == 4, "all four partitions get events")
        #expect(try row.decode(Int64.self, at: 2) == 0, "no aggregate is split across partitions")
        #expect(try row.decode(Int32.self, at: 3) == 0 && row.decode(Int32.self, at: 4) == 3)
        // Pinned, so the layout never changes under existing checkpoints: the first 32 bits of
        // md5(aggregate_type || '/' || aggregate_id), top bit cleared, modulo N (computed
        // independently: md5('Order/o1') starts c7de1589, 'Order/o2' b12693f1, 'Refund/r-7' ffb217da).
        let pinned = try await connection.query(
            "SELECT \(WorkUnit.partitionExpression(count: "$1", layout: .aggregate)) FROM (VALUES (1, 'Order', 'o1'), (2, 'Order', 'o2'), (3, 'Refund', 'r-7')) AS e(n, aggregate_type, aggregate_id) ORDER BY n",
            [Int32(7)]
        ).map { try $0.decode(Int32.self, at: 0) }
        #expect(pinned == [1, 2, 2])
    }

    @Test("changing partitions on a projection with progress exits 78 naming it; after reset the new layout rebuilds it exactly")
    func changingPartitionsNeedsReset() async throws {
        let db = try await TestDatabase.fresh("partition_change")
        let single = daemonConfig(db)
        let split = TemporaryFile.write(
            try String(contentsOfFile: single, encoding: .utf8).replacingOccurrences(
                of: "    aggregate_types: [Order]\n", with: "    aggregate_types: [Order]\n    partitions: 3\n"))
        defer { TemporaryFile.remove(single); TemporaryFile.remove(split) }
        #expect(try await ProjectionistProcess.run(["migrate", "--config", single]).status == 0)
        let connection = try await db.connect()
        let last = try await appendOrders(30, prefix: "p", on: connection)
        let daemon = try ProjectionistProcess.start(["run", "--config", single])
        try await eventually("caught up") { projectionState(try await statusJSON(single))["position"] as? Int == Int(last) }
        daemon.signal(SIGTERM)
        #expect(await daemon.finish().status == 0)

        let refused = try await ProjectionistProcess.run(["run", "--config", split])
        #expect(refused.status == 78)
        #expect(refused.stderr.contains("order_overview_v1") && refused.stderr.contains("partitions: 1"), "\(refused.stderr)")
        #expect(refused.stderr.contains("projectionist reset order_overview_v1"))

        let reset = try await ProjectionistProcess.run(["reset", "order_overview_v1", "--config", split])
        #expect(reset.status == 0, "\(reset.stderr)")
        // The old layout's position, not the new rows' 0.
        #expect(reset.stdout.contains("order_overview_v1 at \(last) → 0"), "\(reset.stdout)")
        let names = try await connection.query("SELECT consumer_name FROM consumer_checkpoints ORDER BY 1").map { try $0.decode(String.self, at: 0) }
        #expect(names == ["order_overview_v1#0/3", "order_overview_v1#1/3", "order_overview_v1#2/3"], "the old layout's row is gone")
        let rebuilt = try ProjectionistProcess.start(["run", "--config", split])
        try await eventually("every partition caught up, the read model exact") {
            let rows = (try await statusJSON(split)["projections"] as? [[String: Any]]) ?? []
            let caughtUp = rows.count == 3 && rows.allSatisfy { $0["position"] as? Int == Int(last) }
            let differences = try await OrderWorkload.oracleDifferences(on: connection)
            return caughtUp && differences == 0
        }
        let partitions = ((try await statusJSON(split)["projections"] as? [[String: Any]]) ?? []).compactMap { $0["partition"] as? String }
        #expect(partitions == ["0/3", "1/3", "2/3"])
        rebuilt.signal(SIGTERM)
        #expect(await rebuilt.finish().status == 0)
    }
}
