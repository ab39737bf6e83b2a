import EventStore
import Foundation
import Postgres
import Projections
import TestSupport

// The load around the rebuild measurement: stopping daemons, the writers and the readers of the view.

extension Bench {
    /// SIGTERM, and waits for the exit.
    static func stop(_ daemon: RunningProcess) async {
        daemon.signal(SIGTERM)
        _ = await daemon.finish()
    }

    /// `swap.seconds` of the daemon's "Swapped the published views" line, if it logged one.
    static func loggedSwapSeconds(_ log: String) -> Double? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("Swapped the published views") }),
            let range = line.range(of: "swap.seconds=")
        else { return nil }
        return Double(line[range.upperBound...].prefix { !$0.isWhitespace })
    }

    /// `SELECT * FROM order_overview LIMIT 50` every 10 ms (the next right away if one took
    /// longer) until `stop`, on a connection of its own; with `prepared`, as a named prepared
    /// statement (prepared again under a new name after an error, as drivers with statement
    /// caches do). Every query's start (seconds since `reference`), latency, columns or error.
    static func read(_ database: ConnectionConfiguration, prepared: Bool, reference: ContinuousClock.Instant, stop: StopFlag) async throws
        -> [ReaderSample]
    {
        let connection = try await PostgresConnection.connect(database)
        let sql = "SELECT * FROM \(Self.publishedView) LIMIT 50"
        var generation = 0
        if prepared { try await connection.prepare("reader_0", sql) }
        let clock = ContinuousClock()
        var samples: [ReaderSample] = []
        samples.reserveCapacity(10_000)
        var next = clock.now
        while !stop.isSet {
            let started = clock.now
            do {
                let result = prepared ? try await connection.queryPrepared("reader_\(generation)") : try await connection.query(sql)
                samples.append(ReaderSample(
                    start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: result.columnCount))
            } catch {
                let text = (error as? PostgresError).map { "\($0.sqlState ?? "-") \($0.message)" } ?? "\(error)"
                samples.append(ReaderSample(
                    start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: nil, error: text))
                if prepared {
                    generation += 1
                    try? await connection.prepare("reader_\(generation)", sql)
                }
            }
            next = max(next + .milliseconds(10), clock.now)
            try await clock.sleep(until: next)
        }
        await connection.close()
        return samples
    }

    /// Appends `perSecond` single-event appends a second (orders `live-N`: placed, 1–3 lines,
    /// confirmed, one event per transaction) until `stop`; an append that fails is recorded and
    /// tried again, as an application would. - Returns: every attempt (start on `reference`'s clock).
    static func write(_ database: ConnectionConfiguration, perSecond: Int, reference: ContinuousClock.Instant, stop: StopFlag) async throws
        -> [ReaderSample]
    {
        guard perSecond > 0 else { return [] }
        let connection = try await PostgresConnection.connect(database)
        let clock = ContinuousClock()
        let interval = Duration.seconds(1) / perSecond
        let start = clock.now
        var count = 0, order = 0
        var pending: [Event] = []
        var attempts: [ReaderSample] = []
        while !stop.isSet {
            try await clock.sleep(until: start + interval * count)
            if pending.isEmpty {
                pending = OrderWorkload.events(orderID: "live-\(order)", lines: 1 + order % 3, seed: order)
                order += 1
            }
            let started = clock.now
            do {
                try await EventStore().appendInOwnTransaction([pending[0]], expected: .any, on: connection)
                attempts.append(ReaderSample(start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: 1))
                pending.removeFirst()
            } catch {
                attempts.append(ReaderSample(
                    start: (started - reference).seconds, milliseconds: (clock.now - started).seconds * 1000, columns: nil, error: Self.describe(error)))
            }
            count += 1
        }
        await connection.close()
        return attempts
    }

    /// SQLSTATE, message and detail of a server error.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PostgresError else { return "\(error)" }
        return "\(error.sqlState ?? "-") \(error.message)" + (error.detail.map { " (\($0))" } ?? "")
    }
}
