import EventStore
import Synchronization

/// The aggregates a unit has parked (`on_error: park`), each with the position it was parked
/// at, as of the checkpoint row's `parked_version`. A runner keeps one per unit and reloads it
/// only when the version it reads with the checkpoint lock moved: with nothing parked, the
/// batches pay nothing for it.
struct ParkedAggregates: Sendable, Equatable {
    /// The checkpoint row's `parked_version` this set was read at; nil before the first read.
    var version: Int64?
    /// Aggregate → the position of its first parked event.
    var first: [AggregateKey: Int64] = [:]

    var isEmpty: Bool { self.first.isEmpty }
    var count: Int { self.first.count }

    func contains(_ event: PersistedEvent) -> Bool {
        !self.first.isEmpty && self.first[AggregateKey(of: event)] != nil
    }

    /// `events` split into those to apply and those to park (their aggregate is parked),
    /// each in order; `kept` holds the indices of those to apply (to filter what was built
    /// per event alongside them).
    func split(_ events: [PersistedEvent]) -> (apply: [PersistedEvent], park: [PersistedEvent], kept: [Int]) {
        guard !self.first.isEmpty else { return (events, [], Array(events.indices)) }
        var apply: [PersistedEvent] = []
        var park: [PersistedEvent] = []
        var kept: [Int] = []
        apply.reserveCapacity(events.count)
        for (index, event) in events.enumerated() {
            if self.first[AggregateKey(of: event)] != nil {
                park.append(event)
            } else {
                apply.append(event)
                kept.append(index)
            }
        }
        return (apply, park, kept)
    }
}

/// A runner's cached parked set, shared by its actions (a batch, an isolation, a dead letter).
final class ParkedCache: Sendable {
    private let state = Mutex(ParkedAggregates())

    var current: ParkedAggregates { self.state.withLock { $0 } }

    func set(_ parked: ParkedAggregates) {
        self.state.withLock { $0 = parked }
    }
}
