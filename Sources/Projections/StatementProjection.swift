import EventStore
import Postgres

/// One statement a projection wants run for an event: SQL with bound parameters, or a
/// statement the projection prepared on the connection (`prepare(_:)`).
public struct ProjectionStatement: Sendable {
    public enum Kind: Sendable {
        case sql(String)
        case prepared(name: String)
    }
    public var kind: Kind
    public var parameters: [PostgresParameter]

    public init(_ sql: String, _ parameters: [any PostgresEncodable] = []) {
        self.kind = .sql(sql)
        self.parameters = parameters.map(\.postgresParameter)
    }

    public init(prepared name: String, parameters: [PostgresParameter]) {
        self.kind = .prepared(name: name)
        self.parameters = parameters
    }
}

/// A projection that only writes: it turns each event into statements, and the runtime sends a
/// whole batch's statements in one pipeline with one sync (one round trip), instead of one round
/// trip per statement. A handler that must read results should implement `Projection` directly.
public protocol StatementProjection: Projection {
    /// The statements for `event`, in order; empty when the event changes nothing.
    /// Throwing marks the event as failing (its handler error).
    func statements(for event: PersistedEvent) throws -> [ProjectionStatement]
}

extension StatementProjection {
    public func handle(_ event: PersistedEvent, in transaction: Transaction) async throws {
        try await self.handle(batch: [event], in: transaction)
    }

    public func handle(batch events: [PersistedEvent], in transaction: Transaction) async throws {
        var pipeline = Pipeline()
        // owners[i] is the index of the event statement i belongs to.
        var owners: [Int] = []
        owners.reserveCapacity(events.count)
        for (index, event) in events.enumerated() {
            let statements: [ProjectionStatement]
            do {
                statements = try self.statements(for: event)
            } catch {
                // Statements of earlier events still run first, so the failure is reported for this event.
                if !pipeline.isEmpty { try await self.send(pipeline, owners, events, transaction) }
                throw HandlerError(event: event, error: error)
            }
            for statement in statements {
                switch statement.kind {
                case .sql(let sql): pipeline.append(sql, encoded: statement.parameters)
                case .prepared(let name): pipeline.appendPrepared(name, encoded: statement.parameters)
                }
                owners.append(index)
            }
        }
        try await self.send(pipeline, owners, events, transaction)
    }

    private func send(_ pipeline: Pipeline, _ owners: [Int], _ events: [PersistedEvent], _ transaction: Transaction)
        async throws
    {
        do {
            try await transaction.execute(pipeline)
        } catch let error as PostgresError {
            guard let index = error.statementIndex, index < owners.count, !error.isTransient else { throw error }
            throw HandlerError(event: events[owners[index]], error: error)
        }
    }
}
