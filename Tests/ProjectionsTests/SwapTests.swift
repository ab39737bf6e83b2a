import EventStore
import Logging
import Postgres
@testable import Projections
import TestSupport
import TestTraits
import Testing

/// The swap against the real server: what it decides while the predecessor still moves.
@Suite(.database, .timeLimit(.minutes(1)))
struct SwapTests {
    static let projections: [any Projection] = [
        try! SQLProjection(
            name: "swap_v1", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [(eventType: "OrderPlaced", statements: ["SELECT 1"])], publishes: ["swap_view": "swap_v1_table"]),
        try! SQLProjection(
            name: "swap_v2", aggregateTypes: nil, onError: .stop, setup: nil, reset: nil,
            handlers: [(eventType: "OrderPlaced", statements: ["SELECT 1"])], publishes: ["swap_view": "swap_v2_table"],
            replaces: "swap_v1"),
    ]

    static func setCheckpoint(_ name: String, _ position: Int64, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO consumer_checkpoints (consumer_name, last_position) VALUES ($1, $2)
            ON CONFLICT (consumer_name) DO UPDATE SET last_position = $2
            """, [name, position])
    }

    static func retired(_ name: String, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query("SELECT retired_at IS NOT NULL FROM consumer_checkpoints WHERE consumer_name = $1", [name])
            .first?.decode(Bool.self, at: 0) ?? false
    }

    @Test("the predecessor commits while the swap waits for its rows: the swap re-checks under the lock and does not go back in time")
    func predecessorMovesWhileTheSwapWaits() async throws {
        let db = try await projectionDatabase("swap_recheck")
        let connection = try await db.connect()
        try await connection.execute(
            script: """
                CREATE TABLE swap_v1_table (id text PRIMARY KEY); CREATE TABLE swap_v2_table (id text PRIMARY KEY);
                CREATE VIEW swap_view AS SELECT * FROM swap_v1_table
                """)
        let caughtUp = try await appendOrders(3, prefix: "before", on: connection)
        try await Self.setCheckpoint("swap_v1", caughtUp, on: connection)
        try await Self.setCheckpoint("swap_v2", caughtUp, on: connection)

        // The predecessor's batch in flight: it holds its checkpoint row, as the runner's fencing step does.
        let batch = try await db.connect()
        try await batch.query("BEGIN")
        try await batch.query("SELECT 1 FROM consumer_checkpoints WHERE consumer_name = 'swap_v1' FOR UPDATE")

        let monitor = SwapMonitor(
            projections: Self.projections, pool: ConnectionPool(database: db.configuration, maxConnections: 3), options: RuntimeOptions(), logger: Logger(label: "swap-test"))
        let swapConnection = try await db.connect()
        let swapPID = await swapConnection.backendPID  // read now: the connection is busy while the swap waits
        let swap = Task {
            var warned: Set<String> = []
            var done: Set<String> = []
            try await monitor.check(on: swapConnection, warned: &warned, done: &done)
        }
        // The swap found v2 ready (at the head, as far as v1) and now waits for v1's row.
        try await eventually("the swap waits for the predecessor's checkpoint row") {
            try await connection.query(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = $1", [swapPID]
            )[0].decode(Int64.self, at: 0) > 0
        }
        // Meanwhile v1 applies newer events and commits: readers of the view see them.
        let newer = try await appendOrders(3, prefix: "after", on: connection)
        try await batch.query("UPDATE consumer_checkpoints SET last_position = $1 WHERE consumer_name = 'swap_v1'", [newer])
        try await batch.query("COMMIT")
        try await swap.value

        let v1Retired = try await Self.retired("swap_v1", on: connection)
        #expect(!v1Retired, "the view went to swap_v2 at \(caughtUp) after readers saw swap_v1 at \(newer): back in time")

        // Once v2 has caught up with what v1 served, the next look swaps.
        try await Self.setCheckpoint("swap_v2", newer, on: connection)
        var warned: Set<String> = []
        var done: Set<String> = []
        try await monitor.check(on: swapConnection, warned: &warned, done: &done)
        #expect(try await Self.retired("swap_v1", on: connection), "v2 caught up with v1: the swap happens")
        // `drop` of the retired v1 deletes its row; the monitor, having swapped, leaves it gone.
        try await connection.query("DELETE FROM consumer_checkpoints WHERE consumer_name = 'swap_v1'")
        try await monitor.check(on: swapConnection, warned: &warned, done: &done)
        #expect(try await connection.query("SELECT count(*) FROM consumer_checkpoints WHERE consumer_name = 'swap_v1'")[0].decode(Int64.self, at: 0) == 0)
        await batch.close()
        await swapConnection.close()
        await connection.close()
    }
}
