import Foundation
import Postgres

/// An event to append: a fact about one aggregate. The store assigns its aggregate version
/// and global position.
public struct Event: Sendable, Hashable {
    public var aggregateType: String
    public var aggregateID: String
    /// Unique across the store; a second event with the same id is refused.
    public var eventID: UUID
    /// Tells consumers how to read the payload, e.g. `OrderPlaced`.
    public var eventType: String
    /// The version of the payload's schema.
    public var eventVersion: Int32
    /// The payload bytes (JSON by convention, possibly encrypted): stored as BYTEA unchanged.
    public var payload: [UInt8]
    /// JSON object bytes, stored as JSONB; nil stores NULL.
    public var metadata: [UInt8]?
    public var traceID: String?
    public var correlationID: String?
    public var causationID: String?
    /// nil lets the database stamp `now()`; a `Date` is stored as its nearest microsecond.
    public var createdAt: Date?

    public init(
        aggregateType: String, aggregateID: String, eventID: UUID = UUID(), eventType: String, eventVersion: Int32 = 1,
        payload: [UInt8], metadata: [UInt8]? = Array("{}".utf8), traceID: String? = nil, correlationID: String? = nil,
        causationID: String? = nil, createdAt: Date? = nil
    ) {
        self.aggregateType = aggregateType
        self.aggregateID = aggregateID
        self.eventID = eventID
        self.eventType = eventType
        self.eventVersion = eventVersion
        self.payload = payload
        self.metadata = metadata
        self.traceID = traceID
        self.correlationID = correlationID
        self.causationID = causationID
        self.createdAt = createdAt
    }

    /// An event whose payload is `payload` encoded as JSON.
    public init<Payload: Encodable>(
        aggregateType: String, aggregateID: String, eventID: UUID = UUID(), eventType: String, eventVersion: Int32 = 1,
        json payload: Payload, createdAt: Date? = nil
    ) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        self.init(
            aggregateType: aggregateType, aggregateID: aggregateID, eventID: eventID, eventType: eventType,
            eventVersion: eventVersion, payload: Array(try encoder.encode(payload)), createdAt: createdAt)
    }
}

/// An event as stored: the event plus its place in its aggregate's stream and in the whole log.
public struct PersistedEvent: Sendable, Hashable {
    /// Position in the whole log (`events.global_position`), increasing with insertion.
    public var globalPosition: Int64
    public var aggregateType: String
    public var aggregateID: String
    /// 1 for an aggregate's first event, then consecutive.
    public var aggregateVersion: Int64
    public var eventID: UUID
    public var eventType: String
    public var eventVersion: Int32
    public var payload: [UInt8]
    public var metadata: [UInt8]?
    public var traceID: String?
    public var correlationID: String?
    public var causationID: String?
    /// `events.created_at` exactly as stored, to the microsecond; `createdAt.date` for a `Date`.
    public var createdAt: PostgresTimestamp

    public init(
        globalPosition: Int64, aggregateType: String, aggregateID: String, aggregateVersion: Int64, eventID: UUID,
        eventType: String, eventVersion: Int32, payload: [UInt8], metadata: [UInt8]?, traceID: String?,
        correlationID: String?, causationID: String?, createdAt: PostgresTimestamp
    ) {
        self.globalPosition = globalPosition
        self.aggregateType = aggregateType
        self.aggregateID = aggregateID
        self.aggregateVersion = aggregateVersion
        self.eventID = eventID
        self.eventType = eventType
        self.eventVersion = eventVersion
        self.payload = payload
        self.metadata = metadata
        self.traceID = traceID
        self.correlationID = correlationID
        self.causationID = causationID
        self.createdAt = createdAt
    }

    /// Decodes the payload as JSON.
    public func decodePayload<T: Decodable>(as type: T.Type = T.self) throws -> T {
        try Self.decoder.decode(T.self, from: Data(self.payload))
    }

    /// One decoder for every payload: its options never change after this, and decoding is
    /// safe from several threads.
    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}

/// The events of one aggregate, in version order.
public struct AggregateStream: Sendable {
    public var aggregateType: String
    public var aggregateID: String
    public var events: [PersistedEvent]
    /// The version of the last event read (0 when there is none).
    public var version: Int64 { self.events.last?.aggregateVersion ?? 0 }
    public var isEmpty: Bool { self.events.isEmpty }
}

/// What an append wrote.
public struct AppendResult: Sendable {
    /// The appended events with their versions and global positions, in order.
    public var events: [PersistedEvent]
    /// The aggregate's version after the append.
    public var version: Int64 { self.events.last?.aggregateVersion ?? 0 }
    public var globalPositions: [Int64] { self.events.map(\.globalPosition) }
}
