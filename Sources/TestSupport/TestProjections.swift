import EventStore
import Foundation
import Postgres
import Projections

/// The getting-started order_overview_v1 in Swift: version-guarded, so re-delivery changes nothing.
public struct OrderOverviewProjection: StatementProjection {
    public let name: String
    public init(name: String = "order_overview_v1") { self.name = name }
    public var aggregateTypes: [String]? { ["Order"] }

    public func reset(in transaction: Transaction) async throws {
        try await transaction.query("TRUNCATE order_overview_v1")
    }

    /// The one statement an event turns into (nil: the event type changes nothing).
    public func statement(for event: PersistedEvent) throws -> (sql: String, parameters: [any PostgresEncodable]) {
        switch event.eventType {
        case "OrderPlaced":
            let data = try event.decodePayload(as: OrderPlaced.self)
            return (
                """
                INSERT INTO order_overview_v1 (order_id, customer_id, status, currency, total_cents, line_count, version)
                VALUES ($1, $2, 'pending', $3, 0, 0, $4)
                ON CONFLICT (order_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
                    currency = EXCLUDED.currency, version = EXCLUDED.version
                WHERE order_overview_v1.version < EXCLUDED.version
                """, [event.aggregateID, data.customer_id, data.currency, event.aggregateVersion]
            )
        case "OrderLineAdded":
            let data = try event.decodePayload(as: OrderLineAdded.self)
            return (
                """
                UPDATE order_overview_v1 SET total_cents = total_cents + $2, line_count = line_count + $3, version = $4
                WHERE order_id = $1 AND version < $4
                """, [event.aggregateID, Int64(data.quantity) * data.unit_price_cents, Int64(data.quantity), event.aggregateVersion]
            )
        case "OrderConfirmed":
            return (
                "UPDATE order_overview_v1 SET status = 'confirmed', version = $2 WHERE order_id = $1 AND version < $2",
                [event.aggregateID, event.aggregateVersion]
            )
        default:
            return ("SELECT 1 WHERE $1::text IS NULL", [event.eventType])
        }
    }

    /// Each statement is prepared once per connection, named after its event type.
    public func prepare(_ connection: PostgresConnection) async throws {
        for type in Self.preparedTypes {
            let statement = try self.statement(for: Self.sample(type))
            try await connection.prepare("order_overview_\(type)", statement.sql, types: statement.parameters.map { $0.postgresParameter.oid })
        }
    }

    public func statements(for event: PersistedEvent) throws -> [ProjectionStatement] {
        guard Self.preparedTypes.contains(event.eventType) else { return [] }
        let statement = try self.statement(for: event)
        return [ProjectionStatement(prepared: "order_overview_\(event.eventType)", parameters: statement.parameters.map(\.postgresParameter))]
    }

    static let preparedTypes = ["OrderPlaced", "OrderLineAdded", "OrderConfirmed"]

    /// An event of `type` with a valid payload, to derive the statement's parameter types.
    static func sample(_ type: String) -> PersistedEvent {
        let payload: String =
            switch type {
            case "OrderPlaced": #"{"customer_id": "c", "currency": "EUR"}"#
            case "OrderLineAdded": #"{"sku": "s", "quantity": 1, "unit_price_cents": 1}"#
            default: "{}"
            }
        return PersistedEvent(
            globalPosition: 0, aggregateType: "Order", aggregateID: "", aggregateVersion: 0, eventID: UUID(), eventType: type,
            eventVersion: 1, payload: Array(payload.utf8), metadata: nil, traceID: nil, correlationID: nil, causationID: nil,
            createdAt: .now)
    }
}

/// A deliberately non-idempotent projection: `n = n + 1` per event and one log row per
/// application, no version guard. Any duplicate or missing application shows in its numbers.
public struct CounterProjection: Projection {
    public let name: String
    public let aggregateTypes: [String]?
    public let onError: OnError
    /// Events of this type make the handler fail (division by zero in SQL).
    public let poisonType: String?
    /// Seconds of `pg_sleep` per event (a slow projection).
    public let sleepSeconds: Double
    public let partitions: Int

    public init(
        name: String, aggregateTypes: [String]? = nil, onError: OnError = .stop, poisonType: String? = nil,
        sleepSeconds: Double = 0, partitions: Int = 1
    ) {
        self.name = name
        self.partitions = partitions
        self.aggregateTypes = aggregateTypes
        self.onError = onError
        self.poisonType = poisonType
        self.sleepSeconds = sleepSeconds
    }

    /// The tables it writes; create them before running.
    public static let setupSQL = """
        CREATE TABLE IF NOT EXISTS counters (projection TEXT PRIMARY KEY, n BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS counter_log (projection TEXT NOT NULL, position BIGINT NOT NULL);
        """

    public func reset(in transaction: Transaction) async throws {
        try await transaction.query("DELETE FROM counters WHERE projection = $1", [self.name])
        try await transaction.query("DELETE FROM counter_log WHERE projection = $1", [self.name])
    }

    public func handle(_ event: PersistedEvent, in tx: Transaction) async throws {
        try await tx.execute(self.statements(for: [event]))
    }

    /// All statements of a batch in one pipeline.
    public func handle(batch events: [PersistedEvent], in tx: Transaction) async throws {
        do {
            try await tx.execute(self.statements(for: events))
        } catch let error as PostgresError {
            guard let index = error.statementIndex else { throw error }
            throw HandlerError(event: events[index / 3], error: error)
        }
    }

    func statements(for events: [PersistedEvent]) -> Pipeline {
        var pipeline = Pipeline()
        for event in events {
            let poisoned = event.eventType == self.poisonType
            pipeline.append(
                poisoned ? "SELECT 1 / 0 WHERE $1::bigint IS NOT NULL" : "SELECT pg_sleep($1::float8 / 1e6)",
                [poisoned ? Int64(1) : Int64(self.sleepSeconds * 1e6)])
            pipeline.append(
                "INSERT INTO counters VALUES ($1, 1) ON CONFLICT (projection) DO UPDATE SET n = counters.n + 1", [self.name])
            pipeline.append("INSERT INTO counter_log VALUES ($1, $2)", [self.name, event.globalPosition])
        }
        return pipeline
    }

    /// (n, log rows, distinct positions in the log).
    public static func numbers(_ name: String, on connection: PostgresConnection) async throws -> (n: Int64, rows: Int64, distinct: Int64) {
        let row = try await connection.query(
            """
            SELECT coalesce((SELECT n FROM counters WHERE projection = $1), 0),
                   (SELECT count(*) FROM counter_log WHERE projection = $1),
                   (SELECT count(DISTINCT position) FROM counter_log WHERE projection = $1)
            """, [name])[0]
        return (try row.decode(at: 0), try row.decode(at: 1), try row.decode(at: 2))
    }
}
