/// One version of one subject's data key: the primary key of the key table.
public struct KeyReference: Sendable, Hashable, CustomStringConvertible {
    /// What kind of data the key protects, e.g. `user-pii`.
    public var scope: String
    /// Whose data, e.g. `user-123`.
    public var scopeID: String
    /// 1 for the first key, then one more per rotation.
    public var version: Int

    public init(scope: String, scopeID: String, version: Int) {
        self.scope = scope
        self.scopeID = scopeID
        self.version = version
    }

    public var description: String { "\(self.scope)/\(self.scopeID) v\(self.version)" }
}
