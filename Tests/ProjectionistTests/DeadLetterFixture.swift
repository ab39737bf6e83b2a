import Foundation
import Postgres
import TestSupport

/// A migrated database with the non-idempotent projection `counts` (each applied event adds 1
/// to its order's `n`, so an event applied twice shows), orders appended, checkpoints at the
/// head as if a daemon had run, and dead letters written as the runner writes them.
struct DeadLetterFixture {
    let db: TestDatabase
    let config: String
    let connection: PostgresConnection

    /// `counts` parks (`on_error: park`) and rebuilds aggregates; `plain` has no `reset_aggregate`;
    /// `split` is `counts` over 2 partitions. An order listed in `poison` fails every handler
    /// (division by zero, SQLSTATE 22012).
    static func make(_ label: String) async throws -> DeadLetterFixture {
        let db = try await TestDatabase.fresh(label)
        let handlers = { (table: String) in
            """
                handlers:
                  OrderPlaced:
                    - SELECT 1 / CASE WHEN EXISTS (SELECT FROM poison WHERE order_id = $aggregate_id) THEN 0 ELSE 1 END
                    - INSERT INTO \(table) VALUES ($aggregate_id, 1) ON CONFLICT (order_id) DO UPDATE SET n = \(table).n + 1
                  OrderLineAdded:
                    - SELECT 1 / CASE WHEN EXISTS (SELECT FROM poison WHERE order_id = $aggregate_id) THEN 0 ELSE 1 END
                    - UPDATE \(table) SET n = n + 1 WHERE order_id = $aggregate_id
                  OrderConfirmed:
                    - SELECT 1 / CASE WHEN EXISTS (SELECT FROM poison WHERE order_id = $aggregate_id) THEN 0 ELSE 1 END
                    - UPDATE \(table) SET n = n + 1 WHERE order_id = $aggregate_id
            """
        }
        let config = TemporaryFile.write(
            """
            \(TestDaemonConfig(db).yaml)
            projections:
              - name: counts
                on_error: park
                retry_parked: 5s
                setup: |
                  CREATE TABLE IF NOT EXISTS poison (order_id text PRIMARY KEY);
                  CREATE TABLE IF NOT EXISTS counts (order_id text PRIMARY KEY, n bigint NOT NULL);
                reset_aggregate: DELETE FROM counts WHERE order_id = $aggregate_id
            \(handlers("counts"))
              - name: plain
                setup: CREATE TABLE IF NOT EXISTS plain (order_id text PRIMARY KEY, n bigint NOT NULL)
            \(handlers("plain"))
              - name: split
                partitions: 2
                on_error: park
                setup: CREATE TABLE IF NOT EXISTS split (order_id text PRIMARY KEY, n bigint NOT NULL)
                reset_aggregate:
                  - DELETE FROM split WHERE order_id = $aggregate_id AND $aggregate_type = 'Order'
            \(handlers("split"))
            """)
        let migrated = try await ProjectionistProcess.run(["migrate", "--config", config])
        guard migrated.status == 0 else { throw FixtureError(message: "migrate: \(migrated.stderr)") }
        return DeadLetterFixture(db: db, config: config, connection: try await db.connect())
    }

    struct FixtureError: Error, CustomStringConvertible {
        var message: String
        var description: String { self.message }
    }

    func remove() { TemporaryFile.remove(self.config) }

    /// Runs `projectionist ARGUMENTS --config …`.
    func run(_ arguments: [String]) async throws -> ProjectionistProcess.Output {
        try await ProjectionistProcess.run(arguments + ["--config", self.config])
    }

    /// The positions of an order's events, in order.
    func positions(_ order: String) async throws -> [Int64] {
        try await self.connection.query("SELECT global_position FROM events WHERE aggregate_id = $1 ORDER BY global_position", [order])
            .map { try $0.decode(Int64.self, at: 0) }
    }

    /// Sets `unit`'s checkpoint (creating its row).
    func checkpoint(_ unit: String, at position: Int64) async throws {
        try await self.connection.query(
            """
            INSERT INTO consumer_checkpoints (consumer_name, last_position) VALUES ($1, $2)
            ON CONFLICT (consumer_name) DO UPDATE SET last_position = EXCLUDED.last_position
            """, [unit, position])
    }

    /// Writes dead letters as a runner does: the order's events from `from` on (an index into its
    /// events); the first one failed (`status`, attempts 1), the later ones parked behind it
    /// (attempts 0). Returns their positions.
    @discardableResult
    func letter(_ unit: String, order: String, from: Int = 0, count: Int? = nil, status: String = "parked") async throws -> [Int64] {
        let all = try await self.positions(order)
        let positions = Array(all[from...].prefix(count ?? all.count))
        for (index, position) in positions.enumerated() {
            try await self.connection.query(
                """
                INSERT INTO consumer_dead_letters (consumer_name, global_position, event_id, event_type, error, aggregate_type, aggregate_id,
                    status, attempts, failed_at, last_failed_at)
                SELECT $1, global_position, event_id, event_type, $3, aggregate_type, aggregate_id, $4, $5, now(),
                    CASE WHEN $5 > 0 THEN now() END
                FROM events WHERE global_position = $2
                """,
                [
                    unit, position,
                    index == 0 ? "server: division by zero [22012] (statement 0 of the pipeline)" : "not applied: aggregate Order/\(order) is parked since position \(positions[0])",
                    status, Int32(index == 0 ? 1 : 0),
                ])
        }
        return positions
    }

    /// `n` of an order in `table`; nil without a row.
    func count(_ order: String, in table: String = "counts") async throws -> Int64? {
        try await self.connection.query("SELECT n FROM \(table) WHERE order_id = $1", [order]).first?.decode(Int64.self, at: 0)
    }

    func setCount(_ order: String, _ n: Int64, in table: String = "counts") async throws {
        try await self.connection.query(
            "INSERT INTO \(table) VALUES ($1, $2) ON CONFLICT (order_id) DO UPDATE SET n = EXCLUDED.n", [order, n])
    }

    func poison(_ order: String) async throws { try await self.connection.query("INSERT INTO poison VALUES ($1)", [order]) }

    func parkedVersion(_ unit: String) async throws -> Int64 {
        try await self.connection.query("SELECT parked_version FROM consumer_checkpoints WHERE consumer_name = $1", [unit])[0]
            .decode(Int64.self, at: 0)
    }

    /// The letters left for `unit`: position → (status, attempts, error).
    func letters(_ unit: String) async throws -> [Int64: (status: String, attempts: Int32, error: String, lastFailed: Bool)] {
        var letters: [Int64: (String, Int32, String, Bool)] = [:]
        for row in try await self.connection.query(
            "SELECT global_position, status, attempts, error, last_failed_at IS NOT NULL FROM consumer_dead_letters WHERE consumer_name = $1",
            [unit])
        {
            letters[try row.decode(Int64.self, at: 0)] = (
                try row.decode(String.self, at: 1), try row.decode(Int32.self, at: 2), try row.decode(String.self, at: 3),
                try row.decode(Bool.self, at: 4)
            )
        }
        return letters
    }
}
