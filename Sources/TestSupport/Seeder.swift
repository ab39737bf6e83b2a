import Postgres

/// Fills the events table with `OrderWorkload.order(n)` for each order `n`, in one statement per
/// 10,000 orders (the same events and payloads, written by the server: fast enough for the
/// benchmark's 200,000 events). Every `otherEvery`-th aggregate gets the type `otherType`
/// instead of `Order` (a second, interleaved type).
public enum Seeder {
    /// - Returns: the number of events written.
    public static func seedOrders(
        _ orders: Int, from first: Int = 0, otherType: String = "Refund", otherEvery: Int = 0, on connection: PostgresConnection
    ) async throws -> Int64 {
        var written: Int64 = 0
        var start = first
        while start < first + orders {
            let end = min(start + 10_000, first + orders) - 1
            let result = try await connection.query(
                """
                WITH o AS (SELECT o, 1 + o % 3 AS lines FROM generate_series($1::int, $2::int) AS o),
                e AS (
                    SELECT o.o, v, o.lines FROM o, generate_series(1, o.lines + 2) AS v
                ),
                ins AS (
                    INSERT INTO events (aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload, metadata)
                    SELECT CASE WHEN $4::int > 0 AND o % $4::int = 0 THEN $3 ELSE 'Order' END, 'o-' || o, v, gen_random_uuid(),
                        CASE WHEN v = 1 THEN 'OrderPlaced' WHEN v = lines + 2 THEN 'OrderConfirmed' ELSE 'OrderLineAdded' END,
                        convert_to(CASE
                            WHEN v = 1 THEN json_build_object('customer_id', 'cust_' || (o % 97), 'currency', CASE WHEN o % 2 = 0 THEN 'EUR' ELSE 'USD' END)::text
                            WHEN v = lines + 2 THEN json_build_object('confirmed_at', '2026-01-01T00:00:00Z')::text
                            ELSE json_build_object('sku', 'sku-' || v, 'quantity', 1 + (o + v) % 3, 'unit_price_cents', 100 * (1 + (o * 7 + v) % 50))::text
                        END, 'UTF8'),
                        '{}'::jsonb
                    FROM e ORDER BY o, v
                    RETURNING aggregate_type, aggregate_id, aggregate_version
                ),
                heads AS (
                    INSERT INTO aggregate_heads (aggregate_type, aggregate_id, aggregate_version)
                    SELECT aggregate_type, aggregate_id, max(aggregate_version) FROM ins GROUP BY aggregate_type, aggregate_id
                    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET aggregate_version = EXCLUDED.aggregate_version
                )
                SELECT count(*) FROM ins
                """, [Int32(start), Int32(end), otherType, Int32(otherEvery)])
            written += try result[0].decode(Int64.self, at: 0)
            start = end + 1
        }
        return written
    }
}

extension Seeder {
    /// Writes `count` `Clock`/`Ticked` events (aggregate `aggregateID`) whose `created_at` values
    /// have every kind of microsecond digit, from 1998 (before PostgreSQL's 2000 epoch, so negative
    /// on the wire) to 2026, the first one `2026-01-02 03:04:05.123457+00`.
    /// - Returns: their global positions, in order.
    @discardableResult
    public static func seedTicks(_ count: Int, aggregateID: String = "ticks", on connection: PostgresConnection)
        async throws -> [Int64]
    {
        let result = try await connection.query(
            """
            WITH ins AS (
                INSERT INTO events (aggregate_type, aggregate_id, aggregate_version, event_id, event_type, payload, created_at)
                SELECT 'Clock', $2, i, gen_random_uuid(), 'Ticked', convert_to('{"i": ' || i || '}', 'UTF8'),
                    CASE WHEN i = 1 THEN timestamptz '2026-01-02 03:04:05.123457+00'
                    ELSE timestamptz '1998-07-01 00:00:00.000001+00' + i * interval '10 days 1 hour 1.000001 second'
                        + (i * 7919) % 1000000 * interval '1 microsecond' END
                FROM generate_series(1, $1::int) AS i ORDER BY i
                RETURNING global_position, aggregate_type, aggregate_id, aggregate_version
            ),
            heads AS (
                INSERT INTO aggregate_heads (aggregate_type, aggregate_id, aggregate_version)
                SELECT aggregate_type, aggregate_id, max(aggregate_version) FROM ins GROUP BY aggregate_type, aggregate_id
            )
            SELECT global_position FROM ins ORDER BY global_position
            """, [Int32(count), aggregateID])
        return try result.map { try $0.decode(Int64.self, at: 0) }
    }
}
