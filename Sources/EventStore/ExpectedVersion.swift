/// What the writer believes about the aggregate's stream; the append fails with
/// `EventStoreError.Code.versionConflict` when the belief is wrong.
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// Append whatever the current version is.
    case any
    /// The aggregate must not exist yet.
    case noStream
    /// The aggregate's current version must be exactly this (0 means: does not exist yet).
    case exact(Int64)

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .exact(let version): "exactly \(version)"
        }
    }
}
