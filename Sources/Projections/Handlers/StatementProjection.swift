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

    /// SQL with parameters already encoded (their types go with them).
    public init(sql: String, parameters: [PostgresParameter]) {
        self.kind = .sql(sql)
        self.parameters = parameters
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
        var owners: [Int] = []
        try self.appendStatements(for: events, to: &pipeline, owners: &owners)
        do {
            try await transaction.execute(pipeline, discardingResults: true)
        } catch let error as PostgresError {
            throw HandlerError(pipelineError: error, owners: owners, events: events) ?? error
        }
    }

    /// Appends the statements of `events` to `pipeline`, recording for each statement the index
    /// of the event it belongs to (so a failing statement names its event).
    /// - Throws: `HandlerError` when `statements(for:)` fails for an event.
    public func appendStatements(for events: [PersistedEvent], to pipeline: inout Pipeline, owners: inout [Int]) throws {
        owners.reserveCapacity(owners.count + events.count)
        for (index, event) in events.enumerated() {
            let statements: [ProjectionStatement]
            do {
                statements = try self.statements(for: event)
            } catch {
                throw HandlerError(event: event, error: error)
            }
            for statement in statements {
                pipeline.append(statement)
                owners.append(index)
            }
        }
    }
}

extension Pipeline {
    /// Adds a projection's statement.
    public mutating func append(_ statement: ProjectionStatement) {
        switch statement.kind {
        case .sql(let sql): self.append(sql, encoded: statement.parameters)
        case .prepared(let name): self.appendPrepared(name, encoded: statement.parameters)
        }
    }
}
