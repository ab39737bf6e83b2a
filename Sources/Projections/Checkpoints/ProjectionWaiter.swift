import EventStore
import Postgres

/// Read your own writes: wait until a projection has applied a position (e.g. the one your
/// append returned) before reading its model. Calls the `projectionist_wait_for` SQL function,
/// so any language can do the same: `SELECT projectionist_wait_for('name', position, '2s')`.
public struct ProjectionWaiter: Sendable {
    public let schema: Schema

    public init(schema: Schema = Schema()) { self.schema = schema }

    /// - Returns: true once every checkpoint of `projection` (each partition's) is at or past
    ///   `position`; false when `timeout` passed first.
    /// - Throws: when called inside a REPEATABLE READ or SERIALIZABLE transaction (a snapshot
    ///   would never see the projection move), or the function is missing (run `migrate`).
    public func wait(for projection: String, position: Int64, timeout: Duration, on connection: some PostgresQuerying) async throws -> Bool {
        let milliseconds = max(0, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await connection.query(
            "SELECT \(self.schema.waitFunction.quoted)($1, $2, make_interval(secs => $3))",
            [projection, position, Double(milliseconds) / 1000]
        )[0].decode(Bool.self, at: 0)
    }
}
