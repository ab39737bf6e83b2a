import EventStore
import Postgres

/// The orders of the parking tests: an order references a customer (a foreign key, which a
/// "bad" order breaks); its lines count up and log their positions in `park_orders.applied`, so
/// that an event applied twice or out of order shows.
public enum ParkingWorkload {
    /// Appends, round-robin so that each order's events spread over batches, an `OrderPlaced`
    /// per order and then `lines` rounds of `LineAdded`; `bad` orders name a customer that does
    /// not exist. - Returns: each order's positions, in order.
    public static func appendOrders(
        _ ids: [String], bad: Set<String>, lines: Int, on connection: PostgresConnection
    ) async throws -> [String: [Int64]] {
        var positions: [String: [Int64]] = [:]
        for round in 0...lines {
            for id in ids {
                let event =
                    round == 0
                    ? Event(aggregateType: "Order", aggregateID: id, eventType: "OrderPlaced",
                        payload: Array(#"{"customer": "\#(bad.contains(id) ? "nobody" : "c1")"}"#.utf8))
                    : Event(aggregateType: "Order", aggregateID: id, eventType: "LineAdded", payload: Array("{}".utf8))
                positions[id, default: []] += try await EventStore().appendInOwnTransaction([event], expected: .any, on: connection)
            }
        }
        return positions
    }

    /// Appends one `LineAdded` to `id`. - Returns: its position.
    public static func addLine(_ id: String, on connection: PostgresConnection) async throws -> Int64 {
        try await EventStore().appendInOwnTransaction(
            [Event(aggregateType: "Order", aggregateID: id, eventType: "LineAdded", payload: Array("{}".utf8))], expected: .any,
            on: connection)[0]
    }

    /// Each order's applied positions (`park_orders.applied`), by id.
    public static func applied(on connection: PostgresConnection) async throws -> [String: [Int64]] {
        var applied: [String: [Int64]] = [:]
        for row in try await connection.query("SELECT id, array_to_string(applied, ',') FROM park_orders") {
            applied[try row.decode(String.self, at: 0)] = try row.decode(String.self, at: 1).split(separator: ",").map { Int64($0)! }
        }
        return applied
    }
}
