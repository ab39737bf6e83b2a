import Foundation

/// A live instance as its `worker_nodes` row says: who it is and the units it configures
/// (nil: a row written without them, by an older version).
struct LiveInstance: Sendable, Equatable {
    var id: UUID
    var hostname: String
    var pid: Int32
    var units: Set<String>?

    /// How log lines and `status` name it.
    var name: String { "\(self.hostname)/\(self.pid)" }
}
