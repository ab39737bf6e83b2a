import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// `reset NAME --aggregate TYPE/ID`: one aggregate's rows rebuilt up to the checkpoint, which stays.
@Suite(.database, .timeLimit(.minutes(3)))
struct AggregateResetCommandTests {
    @Test("reset --aggregate rebuilds exactly that aggregate up to the checkpoint, passes over its dead letters, leaves the checkpoint; a failure rolls back")
    func rebuildsOneAggregate() async throws {
        let fixture = try await DeadLetterFixture.make("agg_reset")
        defer { fixture.remove() }
        let o1 = try await appendOrder("o1", on: fixture.connection)
        let o2 = try await appendOrder("o2", on: fixture.connection)
        // The checkpoint inside o2's history: its events after it are not the rebuild's.
        try await fixture.checkpoint("counts", at: o2[1])
        try await fixture.setCount("o1", 100)
        try await fixture.setCount("o2", 100)

        let o2Reset = try await fixture.run(["reset", "counts", "--aggregate", "Order/o2"])
        #expect(o2Reset.status == 0, "\(o2Reset.stdout) \(o2Reset.stderr)")
        #expect(o2Reset.stdout.contains("2 event(s) applied up to checkpoint \(o2[1]) (unchanged)"), "\(o2Reset.stdout)")
        #expect(try await fixture.count("o2") == 2, "placed and one line, each applied once")
        #expect(try await fixture.count("o1") == 100, "another aggregate's corrupted row stays corrupted")
        #expect(try await CheckpointReading.position("counts", fixture.connection) == o2[1])

        try await fixture.letter("counts", order: "o1", from: 1, count: 1, status: "skipped")
        let o1Reset = try await fixture.run(["reset", "counts", "--aggregate", "Order/o1"])
        #expect(o1Reset.status == 0, "\(o1Reset.stderr)")
        #expect(o1Reset.stdout.contains("3 event(s) applied"), "\(o1Reset.stdout)")
        #expect(o1Reset.stdout.contains("passed over 1 with a dead letter (not applied by the daemon either): position(s) \(o1[1])"), "\(o1Reset.stdout)")
        #expect(try await fixture.count("o1") == 3)

        try await fixture.setCount("o1", 100)
        try await fixture.poison("o1")
        let failed = try await fixture.run(["reset", "counts", "--aggregate", "Order/o1"])
        #expect(failed.status == 1, "\(failed.stdout) \(failed.stderr)")
        #expect(failed.stderr.contains("rolled back") && failed.stderr.contains("[22012]"), "\(failed.stderr)")
        #expect(try await fixture.count("o1") == 100, "the reset_aggregate SQL was rolled back too")
        #expect(try await CheckpointReading.position("counts", fixture.connection) == o2[1])
    }

    @Test("reset --aggregate of a partitioned projection rebuilds in the aggregate's partition, up to that partition's checkpoint")
    func partitioned() async throws {
        let fixture = try await DeadLetterFixture.make("agg_reset_split")
        defer { fixture.remove() }
        let o1 = try await appendOrder("o1", on: fixture.connection)
        let partition = try await fixture.connection.query(
            "SELECT \(WorkUnit.partitionExpression(count: "2", layout: .aggregate))::int FROM (SELECT 'Order'::text AS aggregate_type, 'o1'::text AS aggregate_id) a"
        )[0].decode(Int32.self, at: 0)
        try await fixture.checkpoint("split#\(partition)/2", at: o1[2])
        try await fixture.checkpoint("split#\(1 - partition)/2", at: 0)
        try await fixture.setCount("o1", 100, in: "split")
        let reset = try await fixture.run(["reset", "split", "--aggregate", "Order/o1"])
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stdout.contains("(unit split#\(partition)/2)"), "\(reset.stdout)")
        #expect(try await fixture.count("o1", in: "split") == 3)
    }

    @Test("reset --aggregate without reset_aggregate exits 64 naming the key; with --to it is a usage error")
    func refusals() async throws {
        let fixture = try await DeadLetterFixture.make("agg_reset_refused")
        defer { fixture.remove() }
        let plain = try await fixture.run(["reset", "plain", "--aggregate", "Order/o1"])
        #expect(plain.status == 64, "\(plain.stderr)")
        #expect(plain.stderr.contains("projections.plain.reset_aggregate"), "\(plain.stderr)")
        let both = try await fixture.run(["reset", "counts", "--aggregate", "Order/o1", "--to", "3"])
        #expect(both.status == 64 && both.stderr.contains("not both"), "\(both.stderr)")
        let unknown = try await fixture.run(["reset", "nope", "--aggregate", "Order/o1"])
        #expect(unknown.status == 64 && unknown.stderr.contains("no projection named 'nope'"), "\(unknown.stderr)")
    }

    @Test("check and migrate have the server parse reset_aggregate: a missing table exits 78 naming the key")
    func checkParsesResetAggregate() async throws {
        let db = try await TestDatabase.fresh("agg_reset_check")
        let config = TemporaryFile.write(
            """
            \(TestDaemonConfig(db).yaml)
            projections:
              - name: p
                setup: CREATE TABLE IF NOT EXISTS p (id text PRIMARY KEY)
                reset_aggregate: DELETE FROM no_such_table WHERE id = $aggregate_id
                handlers:
                  OrderPlaced: INSERT INTO p VALUES ($aggregate_id) ON CONFLICT DO NOTHING
            """)
        defer { TemporaryFile.remove(config) }
        let checked = try await ProjectionistProcess.run(["check", "--config", config])
        #expect(checked.status == 78, "\(checked.stderr)")
        #expect(checked.stderr.contains("projections[0].reset_aggregate") && checked.stderr.contains("no_such_table"), "\(checked.stderr)")
    }
}
