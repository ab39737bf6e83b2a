import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

/// `dead-letters list|retry|discard` against dead letters written as the runner writes them,
/// with a projection that counts applied events (an event applied twice shows).
@Suite(.database, .timeLimit(.minutes(3)))
struct DeadLetterCommandTests {
    /// o1 and o2 (4 events each: placed, 2 lines, confirmed), and a checkpoint at the head.
    static func setUp(_ label: String, orders: [String] = ["o1", "o2"]) async throws -> (DeadLetterFixture, Int64) {
        let fixture = try await DeadLetterFixture.make(label)
        var head: Int64 = 0
        for order in orders { head = try await appendOrder(order, on: fixture.connection).last ?? head }
        try await fixture.checkpoint("counts", at: head)
        return (fixture, head)
    }

    @Test("list: one entry per dead letter by projection and position, every field in JSON; a table for people; an unknown name exits 64")
    func list() async throws {
        let (fixture, _) = try await Self.setUp("dl_list", orders: ["o1", "o2", "o3"])
        defer { fixture.remove() }
        let parked = try await fixture.letter("counts", order: "o2", from: 1)
        let skipped = try await fixture.letter("counts", order: "o1", from: 3, status: "skipped")
        try await fixture.checkpoint("split#1/2", at: 100)
        let split = try await fixture.letter("split#1/2", order: "o3", count: 1)

        let json = try await fixture.run(["dead-letters", "list", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let entries = object?["dead_letters"] as? [[String: Any]] ?? []
        #expect(entries.map { $0["projection"] as? String } == Array(repeating: "counts", count: 4) + ["split"])
        #expect(entries.map { $0["position"] as? Int } == ((parked + skipped).sorted() + split).map(Int.init))
        let first = try #require(entries.first)
        #expect(
            Set(first.keys) == [
                "projection", "partition", "position", "event_id", "event_type", "aggregate_type", "aggregate_id", "status", "attempts",
                "error", "failed_at", "last_failed_at",
            ])
        let failing = try #require(entries.first { $0["position"] as? Int == Int(parked[0]) })
        #expect(failing["status"] as? String == "parked" && failing["attempts"] as? Int == 1)
        #expect(failing["aggregate_type"] as? String == "Order" && failing["aggregate_id"] as? String == "o2")
        #expect(failing["event_type"] as? String == "OrderLineAdded")
        #expect((failing["error"] as? String)?.contains("[22012]") == true)
        #expect(failing["partition"] is NSNull)
        #expect((failing["event_id"] as? String).flatMap(UUID.init(uuidString:)) != nil)
        #expect((failing["failed_at"] as? String)?.hasSuffix("Z") == true)
        let behind = try #require(entries.first { $0["position"] as? Int == Int(parked[1]) })
        #expect(behind["attempts"] as? Int == 0 && behind["last_failed_at"] is NSNull)
        #expect(entries.first { $0["position"] as? Int == Int(skipped[0]) }?["status"] as? String == "skipped")
        #expect(entries.last?["partition"] as? String == "1/2")

        let only = try await fixture.run(["dead-letters", "list", "split", "--json"])
        #expect(only.stdout.contains("\"projection\":\"split\"") && !only.stdout.contains("\"projection\":\"counts\""), "\(only.stdout)")

        let table = try await fixture.run(["dead-letters", "list", "counts"])
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("PROJECTION") == true && lines.first?.contains("ATTEMPTS") == true, "\(table.stdout)")
        #expect(lines.count == 6, "header, 4 letters, summary: \(table.stdout)")
        #expect(lines.contains { $0.contains("Order/o2") && $0.contains("parked") && $0.contains("[22012]") }, "\(table.stdout)")
        #expect(lines.last == "4 dead letter(s), 1 parked aggregate(s)", "\(table.stdout)")

        let none = try await fixture.run(["dead-letters", "list", "plain"])
        #expect(none.status == 0 && none.stdout.contains("no dead letters for projection plain"), "\(none.stdout)")
        let unknown = try await fixture.run(["dead-letters", "list", "nope"])
        #expect(unknown.status == 64 && unknown.stderr.contains("no projection named 'nope'"), "\(unknown.stderr)")
    }

    @Test("retry: applies a parked aggregate's events once, in order, deletes them and bumps parked_version; a second retry has nothing to do")
    func retryApplies() async throws {
        let (fixture, head) = try await Self.setUp("dl_retry")
        defer { fixture.remove() }
        // The daemon applied o1's first event and o2 whole, then parked o1 at its second.
        try await fixture.setCount("o1", 1)
        try await fixture.setCount("o2", 4)
        let parked = try await fixture.letter("counts", order: "o1", from: 1)
        let version = try await fixture.parkedVersion("counts")

        let retried = try await fixture.run(["dead-letters", "retry", "counts"])
        #expect(retried.status == 0, "\(retried.stdout) \(retried.stderr)")
        #expect(retried.stdout.contains("applied Order/o1: 3 event(s)"), "\(retried.stdout)")
        #expect(retried.stdout.contains("1 aggregate(s) applied, 0 still parked"), "\(retried.stdout)")
        #expect(try await fixture.count("o1") == 4, "each of the 3 parked events applied once")
        #expect(try await fixture.count("o2") == 4)
        #expect(try await fixture.letters("counts").isEmpty)
        #expect(try await fixture.parkedVersion("counts") == version + 1)
        #expect(try await CheckpointReading.position("counts", fixture.connection) == head, "the checkpoint does not move")
        #expect(parked.count == 3)

        let again = try await fixture.run(["dead-letters", "retry", "counts"])
        #expect(again.status == 0 && again.stdout.contains("nothing to retry"), "\(again.stdout)")
        #expect(try await fixture.count("o1") == 4)
        let aggregate = try await fixture.run(["dead-letters", "retry", "counts", "--aggregate", "Order/o1"])
        #expect(aggregate.status == 0 && aggregate.stdout.contains("aggregate Order/o1 is not parked"), "\(aggregate.stdout)")
    }

    @Test("retry: an aggregate that fails again rolls back and stays parked (attempts + 1, error, last_failed_at), exit 1; the next one still applies")
    func retryFailure() async throws {
        let (fixture, _) = try await Self.setUp("dl_retry_fail")
        defer { fixture.remove() }
        try await fixture.setCount("o1", 1)
        try await fixture.setCount("o2", 2)
        let o1 = try await fixture.letter("counts", order: "o1", from: 1)
        let o2 = try await fixture.letter("counts", order: "o2", from: 2)
        try await fixture.connection.query("UPDATE consumer_dead_letters SET error = 'old' WHERE global_position = $1", [o1[0]])
        try await fixture.poison("o1")
        let version = try await fixture.parkedVersion("counts")

        let retried = try await fixture.run(["dead-letters", "retry", "counts"])
        #expect(retried.status == 1, "\(retried.stdout) \(retried.stderr)")
        #expect(retried.stdout.contains("still parked Order/o1: position \(o1[0]) failed again (attempts 2)"), "\(retried.stdout)")
        #expect(retried.stdout.contains("applied Order/o2: 2 event(s)"), "\(retried.stdout)")
        #expect(retried.stdout.contains("1 aggregate(s) applied, 1 still parked"), "\(retried.stdout)")
        #expect(try await fixture.count("o1") == 1, "rolled back: nothing of o1 applied")
        #expect(try await fixture.count("o2") == 4)
        let letters = try await fixture.letters("counts")
        #expect(letters.keys.sorted() == o1, "o1 stays parked whole, o2's letters are gone")
        let failing = try #require(letters[o1[0]])
        #expect(failing.attempts == 2 && failing.lastFailed && failing.status == "parked")
        #expect(failing.error.contains("division by zero") && failing.error.contains("[22012]"), "\(failing.error)")
        #expect(letters[o1[1]]?.attempts == 0, "a letter behind it was not tried")
        #expect(try await fixture.parkedVersion("counts") == version + 1, "o2 left the parked set")

        let again = try await fixture.run(["dead-letters", "retry", "counts", "--aggregate", "Order/o1"])
        #expect(again.status == 1 && again.stdout.contains("(attempts 3)"), "\(again.stdout)")
    }

    @Test("retry --position: a skipped letter; a parked one only when first of its aggregate (else 64 naming it and --aggregate); nothing there says so")
    func retryPosition() async throws {
        let (fixture, _) = try await Self.setUp("dl_retry_position")
        defer { fixture.remove() }
        try await fixture.setCount("o1", 1)
        try await fixture.setCount("o2", 3)
        let parked = try await fixture.letter("counts", order: "o1", from: 1)
        let skipped = try await fixture.letter("counts", order: "o2", from: 3, status: "skipped")
        let version = try await fixture.parkedVersion("counts")

        let second = try await fixture.run(["dead-letters", "retry", "counts", "--position", "\(parked[1])"])
        #expect(second.status == 64, "\(second.stdout) \(second.stderr)")
        #expect(second.stderr.contains("aggregate Order/o1") && second.stderr.contains("--aggregate Order/o1"), "\(second.stderr)")
        #expect(try await fixture.count("o1") == 1, "refused: nothing applied")

        let skip = try await fixture.run(["dead-letters", "retry", "counts", "--position", "\(skipped[0])"])
        #expect(skip.status == 0 && skip.stdout.contains("applied position \(skipped[0]) (skipped"), "\(skip.stdout) \(skip.stderr)")
        #expect(try await fixture.count("o2") == 4)
        #expect(try await fixture.parkedVersion("counts") == version, "the parked set did not change")

        let first = try await fixture.run(["dead-letters", "retry", "counts", "--position", "\(parked[0])"])
        #expect(first.status == 0, "\(first.stdout) \(first.stderr)")
        #expect(first.stdout.contains("aggregate Order/o1 is still parked"), "\(first.stdout)")
        #expect(try await fixture.count("o1") == 2)
        #expect(try await fixture.letters("counts").keys.sorted() == Array(parked.dropFirst()))
        #expect(try await fixture.parkedVersion("counts") == version + 1)

        let nothing = try await fixture.run(["dead-letters", "retry", "counts", "--position", "999999"])
        #expect(nothing.status == 0 && nothing.stdout.contains("no dead letter at position 999999"), "\(nothing.stdout)")
        let both = try await fixture.run(["dead-letters", "retry", "counts", "--position", "1", "--aggregate", "Order/o1"])
        #expect(both.status == 64, "\(both.stderr)")
        let malformed = try await fixture.run(["dead-letters", "retry", "counts", "--aggregate", "o1"])
        #expect(malformed.status == 64 && malformed.stderr.contains("TYPE/ID"), "\(malformed.stderr)")
    }

    @Test("discard: by aggregate, position or all, without applying; the aggregate is released, parked_version bumped, a notice names the operator; exactly one option")
    func discard() async throws {
        let (fixture, _) = try await Self.setUp("dl_discard", orders: ["o1", "o2", "o3"])
        defer { fixture.remove() }
        try await fixture.setCount("o1", 1)
        let o1 = try await fixture.letter("counts", order: "o1", from: 1)
        let o2 = try await fixture.letter("counts", order: "o2", from: 3, status: "skipped")
        let o3 = try await fixture.letter("counts", order: "o3", from: 2)
        let version = try await fixture.parkedVersion("counts")

        for arguments in [[], ["--all", "--position", "3"], ["--aggregate", "Order/o1", "--all"]] {
            let refused = try await fixture.run(["dead-letters", "discard", "counts"] + arguments)
            #expect(refused.status == 64 && refused.stderr.contains("exactly one of"), "\(arguments): \(refused.stderr)")
        }

        let environment = ProcessInfo.processInfo.environment
        let user = environment["SUDO_USER"] ?? environment["USER"] ?? environment["LOGNAME"] ?? "uid"
        let aggregate = try await fixture.run(["dead-letters", "discard", "counts", "--aggregate", "Order/o1"])
        #expect(aggregate.status == 0, "\(aggregate.stderr)")
        #expect(aggregate.stdout.contains("discarded 3 dead letter(s) of counts (0 skipped, 3 parked); no longer parked: Order/o1"), "\(aggregate.stdout)")
        #expect(aggregate.stderr.contains("notice") && aggregate.stderr.contains("Discarded 3 dead letter(s)"), "\(aggregate.stderr)")
        #expect(aggregate.stderr.contains("operator=\(user)"), "\(aggregate.stderr)")
        #expect(try await fixture.count("o1") == 1, "not applied")
        #expect(try await fixture.parkedVersion("counts") == version + 1)

        let position = try await fixture.run(["dead-letters", "discard", "counts", "--position", "\(o2[0])"])
        #expect(position.stdout.contains("discarded 1 dead letter(s) of counts (1 skipped, 0 parked)"), "\(position.stdout)")
        #expect(try await fixture.parkedVersion("counts") == version + 1, "no parked letter deleted: no bump")

        let all = try await fixture.run(["dead-letters", "discard", "counts", "--all"])
        #expect(all.stdout.contains("discarded \(o3.count) dead letter(s)") && all.stdout.contains("no longer parked: Order/o3"), "\(all.stdout)")
        #expect(try await fixture.letters("counts").isEmpty)
        #expect(try await fixture.parkedVersion("counts") == version + 2)
        #expect(o1.count == 3)

        let nothing = try await fixture.run(["dead-letters", "discard", "counts", "--all"])
        #expect(nothing.status == 0 && nothing.stdout.contains("nothing to discard"), "\(nothing.stdout)")
    }

    @Test("status: parked_aggregates per unit in JSON (0 when none) and 'N parked' in the table's notes")
    func statusCountsParkedAggregates() async throws {
        let (fixture, _) = try await Self.setUp("dl_status")
        defer { fixture.remove() }
        try await fixture.letter("counts", order: "o1", from: 1)
        try await fixture.letter("counts", order: "o2", from: 2)
        try await fixture.letter("counts", order: "o2", from: 0, count: 1, status: "skipped")
        let json = try await statusJSON(fixture.config)
        #expect(projectionState(json, "counts")["parked_aggregates"] as? Int == 2)
        #expect(projectionState(json, "plain")["parked_aggregates"] as? Int == 0)
        let table = try await fixture.run(["status"])
        let line = table.stdout.split(separator: "\n").first { $0.hasPrefix("counts ") }
        #expect(line?.contains("2 parked") == true, "\(table.stdout)")
    }
}

/// The checkpoint as stored.
enum CheckpointReading {
    static func position(_ unit: String, _ connection: PostgresConnection) async throws -> Int64? {
        try await connection.query("SELECT last_position FROM consumer_checkpoints WHERE consumer_name = $1", [unit]).first?.decode(Int64.self, at: 0)
    }
}
