import Encryption
import EventStore
import Foundation
import Postgres
import Testing

@testable import Projections

/// The reader's record of events that did not decrypt: looked up by position, pruned below the
/// checkpoint.
struct UndecryptableEventsTests {
    static func event(_ position: Int64) -> PersistedEvent {
        PersistedEvent(
            globalPosition: position, aggregateType: "Order", aggregateID: "o\(position)", aggregateVersion: 1, eventID: UUID(),
            eventType: "OrderPlaced", eventVersion: 1, payload: Array("{}".utf8), metadata: nil, traceID: nil, correlationID: nil,
            causationID: nil, createdAt: PostgresTimestamp(Date()))
    }

    static func batch(_ positions: ClosedRange<Int64>, failing: [Int64]) -> Batch {
        var batch = Batch(after: positions.lowerBound - 1)
        batch.events = positions.map(Self.event)
        for position in failing { batch.undecryptable[position] = EncryptionError(.decryptionFailed, "position \(position)") }
        return batch
    }

    @Test("entries at or below the checkpoint are forgotten; a later read of a position replaces its entry; lookups find each event's own")
    func pruning() {
        let record = UndecryptableEvents()
        record.record(Self.batch(1...10, failing: [3, 7]))
        record.record(Self.batch(11...20, failing: [12]))
        #expect(record.count == 3)
        #expect(record.firstFailure(in: (1...20).map(Self.event))?.position == 3)
        #expect(Set(record.errors(in: (5...15).map(Self.event)).keys) == [7, 12])

        record.forget(through: 7)
        #expect(record.count == 1, "3 and 7 are at or below the checkpoint")
        #expect(record.errors(in: (1...10).map(Self.event)).isEmpty)
        #expect(record.firstFailure(in: (11...20).map(Self.event))?.position == 12)

        // Read again (keys fixed, or a rewind): 12 decrypts now, 15 does not.
        record.record(Self.batch(11...20, failing: [15]))
        #expect(Set(record.errors(in: (11...20).map(Self.event)).keys) == [15])
        record.forget(through: 20)
        #expect(record.count == 0)
        #expect(record.firstFailure(in: (1...20).map(Self.event)) == nil)
    }
}
