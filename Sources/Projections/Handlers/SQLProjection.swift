import Encryption
import EventStore
import Foundation
import Postgres

/// A projection declared in SQL (the daemon's YAML): per event type, statements with named
/// parameters, prepared once per connection and sent in one pipeline per batch.
public struct SQLProjection: StatementProjection {
    /// One handler statement, rewritten to positional parameters.
    public struct Statement: Sendable {
        public var eventType: String
        /// The original SQL, for messages.
        public var source: String
        public var rewritten: SQLParameterScanner.Result
        /// The prepared statement's name on each connection: `projectionist_<hash of the
        /// projection's name>_<handler>_<statement>`, unique among projections sharing a connection.
        public var preparedName: String
    }

    /// The named parameters handler SQL may use, with the types they are bound as.
    public static let parameterTypes: [String: UInt32] = [
        "global_position": PostgresType.int8, "aggregate_type": PostgresType.text, "aggregate_id": PostgresType.text,
        "aggregate_version": PostgresType.int8, "event_id": PostgresType.uuid, "event_type": PostgresType.text,
        "event_version": PostgresType.int4, "payload": PostgresType.jsonb, "payload_bytes": PostgresType.bytea,
        "metadata": PostgresType.jsonb, "created_at": PostgresType.timestamptz, "trace_id": PostgresType.text,
        "correlation_id": PostgresType.text, "causation_id": PostgresType.text, "projection": PostgresType.text,
        // The stream layout's names, in either layout: the same values as the aggregate_* ones.
        "stream_type": PostgresType.text, "stream_id": PostgresType.text, "stream_version": PostgresType.int8,
    ]

    public let name: String
    public let aggregateTypes: [String]?
    public let onError: OnError
    public let setupSQL: String?
    public let resetSQL: String?
    /// N > 1: the projection runs as N units split by aggregate (see `Projection.partitions`).
    public let partitions: Int
    /// Whether handlers run as statements prepared once per connection (fastest); false behind
    /// a transaction pooler, where a prepared statement does not outlive its transaction.
    public let preparedStatements: Bool
    /// View → table (see `Projection.publishes`).
    public let publishes: [String: String]
    public let replaces: String?
    /// `$payload` with encrypted fields decrypted (see `Projection.decryptsPayloads`).
    public let decryptsPayloads: Bool
    public let encryptedFieldMappings: [EncryptedFieldMapping]
    /// SQL that removes the projection's tables (`projectionist drop`); nil: its reset SQL.
    public let dropSQL: String?
    /// Statements by event type, in order.
    public let handlers: [String: [Statement]]
    /// With `on_error: park`: the runner's own retry of parked aggregates (see `Projection.retryParked`).
    public let retryParked: Duration?
    /// The `reset_aggregate` statements, rewritten to positional parameters (only `$aggregate_type`
    /// and `$aggregate_id`), in order; empty: `reset NAME --aggregate` is refused.
    public let resetAggregateStatements: [SQLParameterScanner.Result]

    /// The named parameters `reset_aggregate` SQL may use.
    public static let resetAggregateParameters: Set<String> = ["aggregate_type", "aggregate_id", "stream_type", "stream_id"]

    public var eventTypes: [String]? { self.handlers.keys.sorted() }

    /// Why a handler (or a `reset_aggregate` statement) was refused; `key`, `eventType` and
    /// `index` locate it.
    public struct DefinitionError: Error, CustomStringConvertible, Sendable {
        /// `handlers` or `reset_aggregate`.
        public var key = "handlers"
        /// The handler's event type; empty for `reset_aggregate`.
        public var eventType: String
        public var index: Int
        public var message: String
        public var description: String { self.message }
    }

    /// - Parameters:
    ///   - handlers: event type → statements, in the order they run.
    ///   - retryParked: with `on_error: park`, the base delay of the runner's own retries.
    ///   - resetAggregate: statements removing one aggregate's rows (`$aggregate_type`, `$aggregate_id`).
    /// - Throws: `DefinitionError` when a statement uses an unknown or positional parameter,
    ///   holds several statements, or is not terminated.
    public init(
        name: String, aggregateTypes: [String]?, onError: OnError, setup: String?, reset: String?,
        handlers: [(eventType: String, statements: [String])], partitions: Int = 1, preparedStatements: Bool = true,
        publishes: [String: String] = [:], replaces: String? = nil, drop: String? = nil, decrypt: Bool = false,
        encryptedFields: [EncryptedFieldMapping] = [], retryParked: Duration? = nil, resetAggregate: [String] = []
    ) throws {
        self.name = name
        self.retryParked = retryParked
        self.resetAggregateStatements = try resetAggregate.enumerated().map { index, sql in
            do {
                return try SQLParameterScanner.rewrite(sql, known: Self.resetAggregateParameters)
            } catch let error as SQLParameterScanner.ScanError {
                throw DefinitionError(key: "reset_aggregate", eventType: "", index: index, message: error.message)
            }
        }
        self.decryptsPayloads = decrypt || !encryptedFields.isEmpty
        self.encryptedFieldMappings = encryptedFields
        self.publishes = publishes
        self.replaces = replaces
        self.dropSQL = drop
        self.partitions = max(1, partitions)
        self.preparedStatements = preparedStatements
        self.aggregateTypes = aggregateTypes
        self.onError = onError
        self.setupSQL = setup
        self.resetSQL = reset
        var compiled: [String: [Statement]] = [:]
        let known = Set(Self.parameterTypes.keys)
        // Projections share pooled connections: the name carries a hash of the projection's name.
        let prefix = "projectionist_\(SessionTag.unitHash(name))"
        for (handlerIndex, handler) in handlers.enumerated() {
            compiled[handler.eventType] = try handler.statements.enumerated().map { index, sql in
                do {
                    return Statement(
                        eventType: handler.eventType, source: sql,
                        rewritten: try SQLParameterScanner.rewrite(sql, known: known),
                        preparedName: "\(prefix)_\(handlerIndex)_\(index)")
                } catch let error as SQLParameterScanner.ScanError {
                    throw DefinitionError(eventType: handler.eventType, index: index, message: error.message)
                }
            }
        }
        self.handlers = compiled
    }

    public func prepare(_ connection: PostgresConnection) async throws {
        guard self.preparedStatements else { return }
        for statement in self.handlers.values.joined() {
            do {
                try await connection.prepare(
                    statement.preparedName, statement.rewritten.sql,
                    types: statement.rewritten.names.map { Self.parameterTypes[$0]! })
            } catch let error as PostgresError {
                var error = error
                error.message = "projection \(self.name), handler \(statement.eventType): cannot prepare its SQL: \(error.message)"
                throw error
            }
        }
    }

    /// A payload or metadata that is not one JSON document because it holds a NUL byte: bound
    /// as text, the server would read it only up to the NUL and apply a shorter document.
    public struct InvalidJSON: ValueFreeError, Sendable {
        /// `payload` or `metadata`.
        public var field: String
        public var offset: Int
        public var description: String {
            "the event's \(self.field) is not one JSON document: it holds a NUL byte at offset \(self.offset) (a JSON text never does)"
        }
    }

    public func statements(for event: PersistedEvent) throws -> [ProjectionStatement] {
        guard let statements = self.handlers[event.eventType] else { return [] }
        for statement in statements {
            for (field, bytes) in [("payload", event.payload), ("metadata", event.metadata ?? [])]
            where statement.rewritten.names.contains(field) {
                if let offset = bytes.firstIndex(of: 0) { throw InvalidJSON(field: field, offset: offset) }
            }
        }
        return statements.map { statement in
            let parameters = statement.rewritten.names.map { self.value($0, of: event) }
            return self.preparedStatements
                ? ProjectionStatement(prepared: statement.preparedName, parameters: parameters)
                : ProjectionStatement(sql: statement.rewritten.sql, parameters: parameters)
        }
    }

    /// The bound value of a named parameter for `event`.
    func value(_ name: String, of event: PersistedEvent) -> PostgresParameter {
        switch name {
        case "global_position": event.globalPosition.postgresParameter
        case "aggregate_type", "stream_type": event.aggregateType.postgresParameter
        case "aggregate_id", "stream_id": event.aggregateID.postgresParameter
        case "aggregate_version", "stream_version": event.aggregateVersion.postgresParameter
        case "event_id": event.eventID.postgresParameter
        case "event_type": event.eventType.postgresParameter
        case "event_version": event.eventVersion.postgresParameter
        // The BYTEA payload as UTF-8 JSON text: the server parses it, and a payload that is not
        // JSON fails this handler's statement (a poison event), never the daemon.
        case "payload": PostgresParameter(oid: PostgresType.jsonb, format: .text, bytes: event.payload)
        case "payload_bytes": event.payload.postgresParameter
        case "metadata": PostgresParameter(oid: PostgresType.jsonb, format: .text, bytes: event.metadata)
        case "created_at": event.createdAt.postgresParameter
        case "trace_id": event.traceID.postgresParameter
        case "correlation_id": event.correlationID.postgresParameter
        case "causation_id": event.causationID.postgresParameter
        case "projection": self.name.postgresParameter
        default: .null
        }
    }

    public func reset(in transaction: Transaction) async throws {
        guard let resetSQL, resetSQL.contains(where: { !$0.isWhitespace }) else { return }
        try await transaction.execute(script: resetSQL)
    }

    public var resetsAggregates: Bool { !self.resetAggregateStatements.isEmpty }

    /// Runs the `reset_aggregate` statements in order with the aggregate bound.
    public func resetAggregate(_ aggregate: AggregateKey, in transaction: Transaction) async throws {
        for statement in self.resetAggregateStatements {
            let parameters: [any PostgresEncodable] = statement.names.map { ["aggregate_type", "stream_type"].contains($0) ? aggregate.type : aggregate.id }
            try await transaction.query(statement.sql, parameters)
        }
    }
}
