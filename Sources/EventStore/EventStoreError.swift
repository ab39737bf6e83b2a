import Postgres

/// An append or read refused by the store.
public struct EventStoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, Hashable {
        /// The expected version did not match (head check or unique constraint: another writer won).
        case versionConflict
        /// An event id that is already stored.
        case duplicateEventID
        /// The append was not valid (no events, several aggregates): nothing was sent to the database.
        case invalidAppend
    }

    public var code: Code
    public var message: String
    public var aggregateType: String?
    public var aggregateID: String?
    public var expected: ExpectedVersion?
    /// The aggregate's version when the conflict was seen, where it could be read.
    public var actualVersion: Int64?
    /// The database error behind it, if any.
    public var underlying: PostgresError?

    public var description: String { "\(self.code.rawValue): \(self.message)" }
}
