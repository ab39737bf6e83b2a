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

    /// The versions the key table holds (`key_version INT`, checked `> 0`): 1 to 2³¹ − 1.
    public static let versions: ClosedRange<Int> = 1...Int(Int32.max)

    /// Whether the key table could hold this reference, so that looking it up cannot fail: a
    /// version in `versions`, and a scope and scope id without NUL (PostgreSQL text holds none).
    /// A payload's reference that is not is a malformed field, which fails its own event only.
    public var isStorable: Bool {
        Self.versions.contains(self.version) && !self.scope.utf8.contains(0) && !self.scopeID.utf8.contains(0)
    }
}
