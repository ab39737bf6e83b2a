import Encryption
import EventStore
import Foundation
import Postgres

/// A read model kept up to date from the event log.
///
/// The runtime calls `handle` for every event in scope, in `global_position` order, inside a
/// transaction that also moves the projection's checkpoint: a commit applies the events and
/// records them as applied together. Handlers never commit or roll back that transaction.
/// They should still write version-guarded (`WHERE version < $aggregate_version`), so that a
/// rewind without truncation stays idempotent.
public protocol Projection: Sendable {
    /// The checkpoint's identity: renaming a projection starts it from scratch.
    var name: String { get }
    /// Aggregate types this projection reads; nil: every event. Others are passed over cheaply
    /// (no payload is read for them).
    var aggregateTypes: [String]? { get }
    /// Event types this projection handles; nil: every type. Others are passed over cheaply.
    var eventTypes: [String]? { get }
    /// What to do with an event whose handler keeps failing.
    var onError: OnError { get }
    /// N > 1 splits the projection by a stable hash of (aggregate_type, aggregate_id) into N
    /// units, each with its own checkpoint, that instances run in parallel. The events of one
    /// aggregate stay in order; handlers must not depend on the order across aggregates.
    /// Changing N on a projection with progress is refused until it is reset.
    var partitions: Int { get }
    /// The views readers query instead of the projection's tables: view → table. `migrate`
    /// creates them; a successor (`replaces`) takes them over once caught up.
    var publishes: [String: String] { get }
    /// The projection this one replaces: it builds from 0 beside that one, which keeps serving,
    /// and once caught up takes over its published views in one transaction and retires it.
    var replaces: String? { get }
    /// True: encrypted payload fields (`{"$encrypted": …}`) arrive decrypted, with the keys
    /// read in the batch's own transaction (`RuntimeOptions.decryptor`); a field whose keys were
    /// destroyed arrives as JSON `null` and the event is applied. Projections that decrypt only
    /// some events can leave this off and call `PersistedEvent.decrypted(with:on:)` instead.
    var decryptsPayloads: Bool { get }
    /// Encrypted fields in a layout of the application's own (eventsalsa's Go adapters), decrypted
    /// like the self-describing ones when `decryptsPayloads` is on.
    var encryptedFieldMappings: [EncryptedFieldMapping] { get }
    /// True: the text of its handler errors, wherever it is stored, logged or served (dead
    /// letters, `last_error`, `status`, the journal), leaves out what may quote a payload's
    /// values (PostgreSQL's DETAIL and HINT, messages that quote their input: `ErrorRedaction`),
    /// so that no decrypted value outlives its key. Defaults to `decryptsPayloads`; a projection
    /// that decrypts on demand (`PersistedEvent.decrypted(with:on:)`) should return true.
    var redactsErrors: Bool { get }

    /// Called on every new connection before the first batch (e.g. to prepare statements).
    func prepare(_ connection: PostgresConnection) async throws
    /// Applies one event to the read model.
    func handle(_ event: PersistedEvent, in transaction: Transaction) async throws
    /// Applies a batch of events in order; the default calls `handle` for each. Override to
    /// send all the statements in one pipeline.
    func handle(batch events: [PersistedEvent], in transaction: Transaction) async throws
    /// Empties the read model before a rebuild from position 0 (`reset` to 0).
    func reset(in transaction: Transaction) async throws
    /// With `on_error: park`: how long after an aggregate's last failure the runner retries it by
    /// itself, doubling with each failed try up to an hour; nil: only `dead-letters retry` does.
    var retryParked: Duration? { get }
    /// Whether `resetAggregate` is implemented (`reset NAME --aggregate TYPE/ID` refuses otherwise).
    var resetsAggregates: Bool { get }
    /// Removes one aggregate's rows from the read model before its events are applied again
    /// (`reset NAME --aggregate TYPE/ID`), in the transaction that re-applies them.
    func resetAggregate(_ aggregate: AggregateKey, in transaction: Transaction) async throws
}

/// A projection's policy for an event whose handler fails after its retries.
public enum OnError: String, Sendable, CaseIterable {
    /// Park the projection at the event (state `failed`) until it succeeds on a later retry or a reset.
    case stop
    /// Write a dead-letter row and move past the event.
    case skip
    /// Park the event's aggregate: this event and every later one of the same aggregate become
    /// dead letters (status `parked`) until retried or discarded; other aggregates go on.
    case park
}

extension Projection {
    public var aggregateTypes: [String]? { nil }
    public var eventTypes: [String]? { nil }
    public var onError: OnError { .stop }
    public var partitions: Int { 1 }
    public var publishes: [String: String] { [:] }
    public var replaces: String? { nil }
    public var decryptsPayloads: Bool { false }
    public var encryptedFieldMappings: [EncryptedFieldMapping] { [] }
    public var redactsErrors: Bool { self.decryptsPayloads }
    public func prepare(_ connection: PostgresConnection) async throws {}
    public func reset(in transaction: Transaction) async throws {}
    public var retryParked: Duration? { nil }
    public var resetsAggregates: Bool { false }
    public func resetAggregate(_ aggregate: AggregateKey, in transaction: Transaction) async throws {}
    public func handle(batch events: [PersistedEvent], in transaction: Transaction) async throws {
        for event in events { try await self.handle(event, in: transaction) }
    }
}

/// A handler failure, with the event it failed on.
public struct HandlerError: Error, CustomStringConvertible, Sendable {
    public var position: Int64
    public var eventID: String
    public var eventType: String
    public var underlying: String
    /// The database error, when the handler's SQL failed.
    public var postgres: PostgresError?
    /// `underlying` without what may quote a value (`ErrorRedaction.text(of:)`).
    private var redactedUnderlying: String

    public init(event: PersistedEvent, error: any Error) {
        self.position = event.globalPosition
        self.eventID = event.eventID.uuidString.lowercased()
        self.eventType = event.eventType
        self.underlying = "\(error)"
        self.postgres = error as? PostgresError
        self.redactedUnderlying = ErrorRedaction.text(of: error)
    }

    /// This error without what may quote an event's values: DETAIL and HINT, and messages that
    /// quote their input (for a projection that `redactsErrors`).
    public func redacted() -> HandlerError {
        var redacted = self
        redacted.underlying = self.redactedUnderlying
        redacted.postgres = self.postgres.map(ErrorRedaction.redacted)
        return redacted
    }

    /// The handler error a failed pipeline statement stands for: `owners[i]` is the index in
    /// `events` of the event statement `i` belongs to. Nil when the failure is not a handler's
    /// (a statement after the handlers', e.g. the checkpoint update) or is transient.
    public init?(pipelineError error: PostgresError, owners: [Int], events: [PersistedEvent]) {
        guard let index = error.statementIndex, index < owners.count, !error.isTransient else { return nil }
        self.init(event: events[owners[index]], error: error)
    }

    public var description: String {
        "handler failed at position \(self.position) (event \(self.eventID), type \(self.eventType)): \(self.underlying)"
    }
}
