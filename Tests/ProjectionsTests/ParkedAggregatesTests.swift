import EventStore
import Foundation
import Postgres
@testable import Projections
import Testing

/// The parked set's decisions and `TYPE/ID` parsing, without a server.
@Suite struct ParkedAggregatesTests {
    func event(_ position: Int64, _ id: String, type: String = "Order") -> PersistedEvent {
        PersistedEvent(
            globalPosition: position, aggregateType: type, aggregateID: id, aggregateVersion: 1, eventID: UUID(), eventType: "E",
            eventVersion: 1, payload: [], metadata: nil, traceID: nil, correlationID: nil, causationID: nil, createdAt: .now)
    }

    @Test("TYPE/ID splits at the first slash; ids may hold more; an empty side or no slash is refused")
    func parsing() {
        #expect(AggregateKey(parsing: "Order/o-1") == AggregateKey(type: "Order", id: "o-1"))
        #expect(AggregateKey(parsing: "Order/a/b") == AggregateKey(type: "Order", id: "a/b"))
        #expect(AggregateKey(parsing: "Order") == nil)
        #expect(AggregateKey(parsing: "/x") == nil)
        #expect(AggregateKey(parsing: "Order/") == nil)
        #expect(AggregateKey(type: "Order", id: "a/b").description == "Order/a/b")
    }

    @Test("nothing parked: every event applies, in order, with every index kept")
    func emptySplit() {
        let events = [self.event(1, "a"), self.event(2, "b")]
        let (apply, park, kept) = ParkedAggregates().split(events)
        #expect(apply == events)
        #expect(park.isEmpty)
        #expect(kept == [0, 1])
    }

    @Test("a parked aggregate's events are held back in order, the others' apply; the type counts as much as the id")
    func split() {
        let parked = ParkedAggregates(version: 3, first: [AggregateKey(type: "Order", id: "b"): 2])
        let events = [self.event(1, "a"), self.event(2, "b"), self.event(3, "b", type: "Refund"), self.event(4, "b"), self.event(5, "c")]
        let (apply, park, kept) = parked.split(events)
        #expect(apply.map(\.globalPosition) == [1, 3, 5])
        #expect(park.map(\.globalPosition) == [2, 4])
        #expect(kept == [0, 2, 4])
        #expect(parked.contains(events[3]))
        #expect(!parked.contains(events[2]))
    }
}
