import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

/// `projectionist-demo`, the writers `scripts/demo` runs, on a database that already has orders.
@Suite(.database, .timeLimit(.minutes(2)))
struct DemoWriterTests {
    static var demo: URL { ProjectionistProcess.executable.deletingLastPathComponent().appendingPathComponent("projectionist-demo") }

    @Test("run twice on one database: the second run appends new orders after the first one's, no version conflict")
    func twice() async throws {
        let db = try await TestDatabase.migrated("demo_twice")
        let connection = try await db.connect()
        func orders() async throws -> Int64 {
            try await connection.query("SELECT count(*) FROM aggregate_heads WHERE aggregate_type = 'Order'")[0].decode(Int64.self, at: 0)
        }
        for run in 1...2 {
            let output = try await ProjectionistProcess.run(
                ["40", "4", "0"], environment: ["PROJECTIONIST_DATABASE_URL": db.connectionString], executable: Self.demo)
            #expect(output.status == 0, "run \(run): \(output.stderr)")
            #expect(output.stdout.contains("appended"), "run \(run): \(output.stdout)")
            #expect(try await orders() == 40 * Int64(run), "run \(run)")
        }
    }
}
