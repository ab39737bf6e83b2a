import EventStore
import Postgres

/// Several writers appending orders at once, each on a connection of its own, with some appends
/// rolled back on purpose: the holes in `global_position` that a projection must pass without
/// stalling or losing an event.
public struct OrderWriters: Sendable {
    /// What the writers did, as they counted it.
    public struct Outcome: Sendable {
        /// The positions of every event whose transaction committed.
        public var committed: [Int64] = []
        /// The positions drawn by transactions rolled back on purpose (never visible).
        public var rolledBack: [Int64] = []
    }

    public var writers: Int
    /// Orders in all; writer `w` appends orders `w`, `w + writers`, `w + 2 × writers`, ...
    public var orders: Int
    /// The share of orders rolled back instead of committed, at random.
    public var rollbackPercent: Int
    /// The history of order `n`.
    public var events: @Sendable (Int) -> [Event]

    public init(
        writers: Int = 4, orders: Int, rollbackPercent: Int = 10,
        events: @escaping @Sendable (Int) -> [Event] = { OrderWorkload.order($0) }
    ) {
        self.writers = max(1, writers)
        self.orders = orders
        self.rollbackPercent = rollbackPercent
        self.events = events
    }

    /// Runs the writers to the end; `connect` opens each writer's connection.
    public func run(connect: @escaping @Sendable () async throws -> PostgresConnection) async throws -> Outcome {
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            for writer in 0..<self.writers {
                group.addTask {
                    let connection = try await connect()
                    var outcome = Outcome()
                    for n in stride(from: writer, to: self.orders, by: self.writers) {
                        let rollback = Int.random(in: 0..<100) < self.rollbackPercent
                        let positions = try await EventStore().appendInOwnTransaction(
                            self.events(n), expected: .noStream, rollback: rollback, on: connection)
                        if rollback { outcome.rolledBack += positions } else { outcome.committed += positions }
                    }
                    await connection.close()
                    return outcome
                }
            }
            return try await group.reduce(into: Outcome()) { total, outcome in
                total.committed += outcome.committed
                total.rolledBack += outcome.rolledBack
            }
        }
    }
}
