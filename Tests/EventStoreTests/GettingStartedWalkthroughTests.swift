import EventStore
import Foundation
import Postgres
import Projections
import TestSupport
import TestTraits
import Testing

// The getting-started walkthrough, in Swift. docs/guide.md's "Event store" snippet is this
// code; keep the two in step. Payload types and order_overview_v1 (version-guarded) live in
// TestSupport/OrderWorkload.swift and TestSupport/TestProjections.swift.

/// The Order aggregate, rebuilt from its stream.
struct Order {
    var id = "", customerID = "", currency = "", status = ""
    var totalCents: Int64 = 0, version: Int64 = 0, lineCount = 0

    init(stream: AggregateStream) throws {
        for event in stream.events {
            switch event.eventType {
            case "OrderPlaced":
                let data = try event.decodePayload(as: OrderPlaced.self)
                (self.id, self.customerID, self.currency, self.status) = (event.aggregateID, data.customer_id, data.currency, "pending")
            case "OrderLineAdded":
                let data = try event.decodePayload(as: OrderLineAdded.self)
                self.lineCount += data.quantity
                self.totalCents += Int64(data.quantity) * data.unit_price_cents
            case "OrderConfirmed":
                self.status = "confirmed"
            default: break
            }
            self.version = event.aggregateVersion
        }
    }
}

@Suite(.database, .timeLimit(.minutes(1)))
struct GettingStartedWalkthroughTests {
    @Test("place an order with two lines and a confirmation, read it back, rebuild it, project it inline")
    func walkthrough() async throws {
        let db = try await TestDatabase.migrated("walkthrough")
        let connection = try await db.connect()
        try await connection.query(OrderWorkload.readModelSQL)  // the getting-started order_overview_v1

        // README: Event store
        let store = EventStore()
        let orderID = UUID().uuidString
        let now = Date()
        let events = [
            try Event(aggregateType: "Order", aggregateID: orderID, eventType: "OrderPlaced",
                      json: OrderPlaced(customer_id: "cust_42", currency: "EUR"), createdAt: now),
            try Event(aggregateType: "Order", aggregateID: orderID, eventType: "OrderLineAdded",
                      json: OrderLineAdded(sku: "sku-coffee-grinder", quantity: 1, unit_price_cents: 12900)),
            try Event(aggregateType: "Order", aggregateID: orderID, eventType: "OrderLineAdded",
                      json: OrderLineAdded(sku: "sku-espresso-cups", quantity: 2, unit_price_cents: 3400)),
            try Event(aggregateType: "Order", aggregateID: orderID, eventType: "OrderConfirmed",
                      json: OrderConfirmed(confirmed_at: now.addingTimeInterval(120))),
        ]
        let projection = OrderOverviewProjection()
        try await projection.prepare(connection)  // its statements, once per connection
        try await connection.transaction { tx in
            let result = try await store.append(events, expected: .noStream, in: tx)
            for event in result.events { try await projection.handle(event, in: tx) }  // inline projection
        }
        let stream = try await connection.transaction { tx in
            try await store.readAggregateStream(type: "Order", id: orderID, on: tx)
        }
        let order = try Order(stream: stream)
        // end README

        #expect(stream.events.map(\.eventType) == ["OrderPlaced", "OrderLineAdded", "OrderLineAdded", "OrderConfirmed"])
        #expect(order.totalCents == 19_700)
        #expect(order.lineCount == 3)
        #expect(order.status == "confirmed")
        #expect(order.version == 4)
        let window = try await store.readAggregateStream(type: "Order", id: orderID, from: 2, to: 4, on: connection)
        #expect(window.events.map(\.aggregateVersion) == [2, 3, 4])

        let row = try await connection.query(
            "SELECT customer_id, status, currency, total_cents, line_count, version FROM order_overview_v1 WHERE order_id = $1",
            [orderID])[0]
        #expect(try row.decode(String.self, at: 0) == "cust_42")
        #expect(try row.decode(String.self, at: 1) == "confirmed")
        #expect(try row.decode(String.self, at: 2) == "EUR")
        #expect(try row.decode(Int64.self, at: 3) == 19_700)
        #expect(try row.decode(Int32.self, at: 4) == 3)
        #expect(try row.decode(Int64.self, at: 5) == 4)

        // Re-delivering the stream changes nothing: the version guard makes the handlers idempotent.
        try await connection.transaction { tx in for event in stream.events { try await projection.handle(event, in: tx) } }
        let again = try await connection.query("SELECT total_cents, line_count FROM order_overview_v1")[0]
        #expect(try again.decode(Int64.self, at: 0) == 19_700)
        #expect(try again.decode(Int32.self, at: 1) == 3)
    }
}
