import EventStore
import Foundation
import Postgres
import TestSupport
import Testing

// The seed's "Getting started" walkthrough, in Swift. The README's "Event store" snippet is
// this code; keep the two in step.

struct OrderPlaced: Codable { var customer_id: String; var currency: String }
struct OrderLineAdded: Codable { var sku: String; var quantity: Int; var unit_price_cents: Int64 }
struct OrderConfirmed: Codable { var confirmed_at: Date }

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

/// order_overview_v1, maintained inline in the append's transaction (version-guarded).
struct OrderOverviewProjection {
    func handle(_ event: PersistedEvent, in tx: Transaction) async throws {
        switch event.eventType {
        case "OrderPlaced":
            let data = try event.decodePayload(as: OrderPlaced.self)
            try await tx.query(
                """
                INSERT INTO order_overview_v1 (order_id, customer_id, status, currency, total_cents, line_count, version)
                VALUES ($1, $2, 'pending', $3, 0, 0, $4)
                ON CONFLICT (order_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
                    currency = EXCLUDED.currency, version = EXCLUDED.version
                WHERE order_overview_v1.version < EXCLUDED.version
                """, [event.aggregateID, data.customer_id, data.currency, event.aggregateVersion])
        case "OrderLineAdded":
            let data = try event.decodePayload(as: OrderLineAdded.self)
            try await tx.query(
                """
                UPDATE order_overview_v1 SET total_cents = total_cents + $2, line_count = line_count + $3, version = $4
                WHERE order_id = $1 AND version < $4
                """, [event.aggregateID, Int64(data.quantity) * data.unit_price_cents, Int64(data.quantity), event.aggregateVersion])
        case "OrderConfirmed":
            try await tx.query(
                "UPDATE order_overview_v1 SET status = 'confirmed', version = $2 WHERE order_id = $1 AND version < $2",
                [event.aggregateID, event.aggregateVersion])
        default: break
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct SeedWalkthroughTests {
    @Test("place an order with two lines and a confirmation, read it back, rebuild it, project it inline")
    func walkthrough() async throws {
        let db = try await TestDatabase.migrated("seed")
        let connection = try await db.connect()
        try await connection.query(
            """
            CREATE TABLE order_overview_v1 (order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL,
              currency TEXT NOT NULL, total_cents BIGINT NOT NULL, line_count INTEGER NOT NULL, version BIGINT NOT NULL)
            """)

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
