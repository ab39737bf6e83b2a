import EventStore
import Foundation
import Postgres

// The getting-started guide's Order domain: payloads, a version-guarded order_overview_v1 projection, an event
// generator and an oracle computed from the committed events.

public struct OrderPlaced: Codable, Sendable {
    public var customer_id: String
    public var currency: String
    public init(customer_id: String, currency: String) {
        self.customer_id = customer_id
        self.currency = currency
    }
}

public struct OrderLineAdded: Codable, Sendable {
    public var sku: String
    public var quantity: Int
    public var unit_price_cents: Int64
    public init(sku: String, quantity: Int, unit_price_cents: Int64) {
        self.sku = sku
        self.quantity = quantity
        self.unit_price_cents = unit_price_cents
    }
}

public struct OrderConfirmed: Codable, Sendable {
    public var confirmed_at: Date
    public init(confirmed_at: Date) { self.confirmed_at = confirmed_at }
}

public enum OrderWorkload {
    /// `CREATE TABLE` for the read model.
    public static let readModelSQL = """
        CREATE TABLE IF NOT EXISTS order_overview_v1 (
            order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, currency TEXT NOT NULL,
            total_cents BIGINT NOT NULL, line_count INTEGER NOT NULL, version BIGINT NOT NULL)
        """

    /// Order `n` of the workload: `o-n`, with 1–3 lines; what `Seeder` writes in bulk.
    public static func order(_ n: Int) -> [Event] {
        self.events(orderID: "o-\(n)", lines: 1 + n % 3, seed: n)
    }

    /// One order's history: placed, `lines` lines, confirmed. The payloads depend on `seed` (and
    /// on the line's version, `line + 2`) exactly as in `Seeder`'s SQL.
    public static func events(orderID: String, lines: Int = 2, seed: Int = 0) -> [Event] {
        var events = [
            try! Event(
                aggregateType: "Order", aggregateID: orderID, eventType: "OrderPlaced",
                json: OrderPlaced(customer_id: "cust_\(seed % 97)", currency: seed % 2 == 0 ? "EUR" : "USD"))
        ]
        for version in 2..<(lines + 2) {
            events.append(
                try! Event(
                    aggregateType: "Order", aggregateID: orderID, eventType: "OrderLineAdded",
                    json: OrderLineAdded(
                        sku: "sku-\(version)", quantity: 1 + (seed + version) % 3,
                        unit_price_cents: Int64(100 * (1 + (seed * 7 + version) % 50)))))
        }
        events.append(
            try! Event(
                aggregateType: "Order", aggregateID: orderID, eventType: "OrderConfirmed",
                json: OrderConfirmed(confirmed_at: Self.confirmedAt)))
        return events
    }

    /// 2026-01-01T00:00:00Z, every order's confirmation time.
    public static let confirmedAt = Date(timeIntervalSince1970: 1_767_225_600)

    /// Rows of the read model `table` (order_overview_v1 unless told) that differ from what the
    /// committed events say (both directions); columns beyond the seven compared are ignored.
    public static func oracleDifferences(
        on connection: PostgresConnection, events: String = "events", table: String = "order_overview_v1"
    ) async throws -> Int64 {
        let oracle = """
            SELECT aggregate_id AS order_id,
                max(CASE WHEN event_type = 'OrderPlaced' THEN convert_from(payload, 'UTF8')::jsonb->>'customer_id' END) AS customer_id,
                CASE WHEN bool_or(event_type = 'OrderConfirmed') THEN 'confirmed' ELSE 'pending' END AS status,
                max(CASE WHEN event_type = 'OrderPlaced' THEN convert_from(payload, 'UTF8')::jsonb->>'currency' END) AS currency,
                coalesce(sum(CASE WHEN event_type = 'OrderLineAdded' THEN (convert_from(payload, 'UTF8')::jsonb->>'quantity')::bigint
                    * (convert_from(payload, 'UTF8')::jsonb->>'unit_price_cents')::bigint END), 0)::bigint AS total_cents,
                coalesce(sum(CASE WHEN event_type = 'OrderLineAdded' THEN (convert_from(payload, 'UTF8')::jsonb->>'quantity')::int END), 0)::int AS line_count,
                max(aggregate_version) AS version
            FROM \(events) WHERE aggregate_type = 'Order' GROUP BY aggregate_id
            """
        let model = "SELECT order_id, customer_id, status, currency, total_cents, line_count, version FROM \(table)"
        let result = try await connection.query(
            "SELECT (SELECT count(*) FROM ((\(oracle)) EXCEPT (\(model))) a) + (SELECT count(*) FROM ((\(model)) EXCEPT (\(oracle))) b)")
        return try result[0].decode(Int64.self, at: 0)
    }
}
