import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

/// A payload that is not one JSON document fails the event's handler (`on_error`); it is never
/// applied as a shorter document.
@Suite(.database, .timeLimit(.minutes(2)))
struct PayloadValidityTests {
    @Test("a NUL byte inside a payload: skip dead-letters that event and applies the rest")
    func nulInPayload() async throws {
        let db = try await projectionDatabase("nul_payload")
        let connection = try await db.connect()
        let payloads: [[UInt8]] = [
            Array(#"{"amount": 1}"#.utf8), Array(#"{"amount": 100}"#.utf8) + [0] + Array(#"{"amount": 7}"#.utf8),
            Array(#"{"amount": 3}"#.utf8),
        ]
        var positions: [Int64] = []
        for (index, payload) in payloads.enumerated() {
            positions += try await connection.transaction { tx in
                try await EventStore().append(
                    [Event(aggregateType: "Order", aggregateID: "n\(index)", eventType: "Amount", payload: payload)], expected: .noStream, in: tx
                ).globalPositions
            }
        }
        let projection = try SQLProjection(
            name: "amounts", aggregateTypes: nil, onError: .skip, setup: nil, reset: nil,
            handlers: [(eventType: "Amount", statements: ["INSERT INTO counter_log VALUES ($projection, ($payload->>'amount')::bigint)"])])
        let running = try RunningWorker(db, [projection])
        try await eventually("caught up") { try await checkpoint("amounts", on: connection) == positions[2] }
        await running.stop()
        let amounts = try await connection.query("SELECT position FROM counter_log WHERE projection = 'amounts' ORDER BY 1")
            .map { try $0.decode(Int64.self, at: 0) }
        #expect(amounts == [1, 3], "the NUL payload was applied as a shorter document")
        let letters = try await connection.query("SELECT global_position, error FROM consumer_dead_letters WHERE consumer_name = 'amounts'")
        #expect(try letters.map { try $0.decode(Int64.self, at: 0) } == [positions[1]])
        #expect(try letters.first?.decode(String.self, at: 1).contains("NUL") == true)
    }
}
