import EventStore
import Postgres

/// Appends one order's history (`OrderWorkload.events`) in its own transaction; rolls it back
/// instead of committing when asked.
/// - Returns: the positions its events got, committed or not.
@discardableResult
public func appendOrder(
    _ id: String, lines: Int = 2, seed: Int = 0, rollback: Bool = false, on connection: PostgresConnection
) async throws -> [Int64] {
    try await EventStore().appendInOwnTransaction(
        OrderWorkload.events(orderID: id, lines: lines, seed: seed), expected: .noStream, rollback: rollback, on: connection)
}

/// Appends `count` orders named `prefix0`, `prefix1`, ..., one transaction each.
/// - Returns: the last position written.
@discardableResult
public func appendOrders(_ count: Int, prefix: String, on connection: PostgresConnection) async throws -> Int64 {
    var last: Int64 = 0
    for index in 0..<count {
        last = try await appendOrder("\(prefix)\(index)", seed: index, on: connection).last ?? last
    }
    return last
}
