import EventStore

/// Which events of the log a unit of work applies: its aggregate types, its event types (a SQL
/// projection's handlers) and its partition. The same test as the scoped read's SQL, in Swift,
/// for rows the shared reader read for everyone.
struct ReadScope: Sendable, Equatable {
    var aggregateTypes: Set<String>?
    var eventTypes: Set<String>?
    var partition: WorkUnit.Partition?

    init(aggregateTypes: [String]?, eventTypes: [String]?, partition: WorkUnit.Partition?) {
        self.aggregateTypes = aggregateTypes.map(Set.init)
        self.eventTypes = eventTypes.map(Set.init)
        self.partition = partition
    }

    /// Whether the unit applies `row`. A partitioned scope needs the row's partition hash
    /// (`WindowRow.partitionHash`); a row read without one is out of no partition's scope.
    func contains(_ row: WindowRow) -> Bool {
        if let types = self.aggregateTypes, !types.contains(row.event.aggregateType) { return false }
        if let types = self.eventTypes, !types.contains(row.event.eventType) { return false }
        if let partition = self.partition {
            guard let hash = row.partitionHash else { return false }
            return Int(hash) % partition.count == partition.index
        }
        return true
    }
}

/// One row of the shared window: the event and, when some unit is partitioned, its partition
/// hash as the server computes it (`WorkUnit.partitionHashExpression`), so that the partition
/// is defined in one place.
struct WindowRow: Sendable, Equatable {
    var event: PersistedEvent
    var partitionHash: Int32?

    var position: Int64 { self.event.globalPosition }
}
