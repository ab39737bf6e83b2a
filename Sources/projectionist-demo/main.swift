import EventStore
import Foundation
import Postgres

// The demo's writers: several concurrent connections append the seed's orders (placed, 1–3
// lines, confirmed) through the event store; some appends are rolled back on purpose, which
// leaves holes in global_position that the daemon must pass without stalling or losing events.
//
// Usage: projectionist-demo ORDERS WRITERS ROLLBACK_PERCENT   (connection from PG* / DATABASE_URL)

struct OrderPlaced: Encodable { var customer_id: String; var currency: String }
struct OrderLineAdded: Encodable { var sku: String; var quantity: Int; var unit_price_cents: Int64 }
struct OrderConfirmed: Encodable { var confirmed_at: Date }
struct RolledBack: Error {}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let orders = arguments.count > 0 ? arguments[0] : 300
let writers = max(1, arguments.count > 1 ? arguments[1] : 4)
let rollbackPercent = arguments.count > 2 ? arguments[2] : 10
let configuration = ConnectionConfiguration(
    connectionString: ProcessInfo.processInfo.environment["PROJECTIONIST_DATABASE_URL"] ?? "", applicationName: "projectionist-demo")
let store = EventStore()
let skus: [(String, Int64)] = [("sku-coffee-grinder", 12900), ("sku-espresso-cups", 3400), ("sku-milk-jug", 1900), ("sku-beans-1kg", 2450)]

func history(_ id: String, _ n: Int) throws -> [Event] {
    var events = [try Event(aggregateType: "Order", aggregateID: id, eventType: "OrderPlaced",
                            json: OrderPlaced(customer_id: "cust_\(n % 42)", currency: n % 3 == 0 ? "USD" : "EUR"))]
    for line in 0..<(1 + n % 3) {
        let (sku, price) = skus[(n + line) % skus.count]
        events.append(try Event(aggregateType: "Order", aggregateID: id, eventType: "OrderLineAdded",
                                json: OrderLineAdded(sku: sku, quantity: 1 + line, unit_price_cents: price)))
    }
    events.append(try Event(aggregateType: "Order", aggregateID: id, eventType: "OrderConfirmed", json: OrderConfirmed(confirmed_at: Date())))
    return events
}

let (committed, rolledBack) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
    for writer in 0..<writers {
        group.addTask {
            let connection = try await PostgresConnection.connect(configuration)
            var committed = 0
            var rolledBack = 0
            for n in stride(from: writer, to: orders, by: writers) {
                let id = String(format: "ord_%05d", n)
                let events = try history(id, n)
                let rollback = Int.random(in: 0..<100) < rollbackPercent
                do {
                    // Placed first, then lines and confirmation: two appends with expected versions.
                    try await connection.transaction { tx in
                        let placed = try await store.append([events[0]], expected: .noStream, in: tx)
                        try await store.append(Array(events.dropFirst()), expected: .exact(placed.version), in: tx)
                        if rollback { throw RolledBack() }
                    }
                    committed += events.count
                } catch is RolledBack {
                    rolledBack += events.count
                }
            }
            return (committed, rolledBack)
        }
    }
    var total = (0, 0)
    for try await (committed, rolledBack) in group {
        total.0 += committed
        total.1 += rolledBack
    }
    return total
}
print("appended \(committed) events from \(writers) concurrent writers; rolled back \(rolledBack) on purpose")
