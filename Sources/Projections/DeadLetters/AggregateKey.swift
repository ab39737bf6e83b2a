import EventStore

/// One aggregate: its type and id, written `TYPE/ID` (split at the first `/`: aggregate types
/// contain none, ids may).
public struct AggregateKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var type: String
    public var id: String

    public init(type: String, id: String) {
        self.type = type
        self.id = id
    }

    /// The aggregate an event belongs to.
    public init(of event: PersistedEvent) {
        self.init(type: event.aggregateType, id: event.aggregateID)
    }

    /// `TYPE/ID` split at the first `/`; nil without one, or with an empty type or id.
    public init?(parsing text: String) {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let type = String(text[..<slash])
        let id = String(text[text.index(after: slash)...])
        guard !type.isEmpty, !id.isEmpty else { return nil }
        self.init(type: type, id: id)
    }

    public var description: String { "\(self.type)/\(self.id)" }

    public static func < (lhs: AggregateKey, rhs: AggregateKey) -> Bool {
        (lhs.type, lhs.id) < (rhs.type, rhs.id)
    }
}
