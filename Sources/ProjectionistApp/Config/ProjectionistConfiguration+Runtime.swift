import EventStore
import Projections

extension ProjectionistConfiguration {
    /// The runtime's options from `worker` and `store`.
    public var runtimeOptions: RuntimeOptions {
        var options = RuntimeOptions()
        options.schema = self.schema
        options.batchSize = self.worker.batchSize
        options.pollInterval = self.worker.pollInterval
        options.maxPollInterval = self.worker.maxPollInterval
        options.gapWarnAfter = self.worker.gapWarnAfter
        options.gapSkipAfter = self.worker.gapSkipAfter
        options.slowBatchWarn = self.worker.slowBatchWarn
        options.allowSequenceCache = self.store.allowSequenceCache
        options.leaseTTL = self.worker.leaseTTL
        options.pooling = self.database.pooling
        options.maxConnections = self.database.maxConnections
        return options
    }

    /// Every configured unit of work, by projection name and partition (`WorkUnit.partitions`),
    /// without compiling the SQL: `status` and `/status` read this on every report.
    var units: [(projection: String, partition: WorkUnit.Partition?)] {
        self.projections.flatMap { projection in WorkUnit.partitions(projection.partitions).map { (projection.name, $0) } }
    }

    /// The SQL projections, compiled.
    /// - Throws: `ConfigurationError` naming the handler (key path, line) whose SQL is refused.
    public func sqlProjections() throws -> [SQLProjection] {
        try self.projections.enumerated().map { index, projection in
            do {
                return try SQLProjection(
                    name: projection.name, aggregateTypes: projection.aggregateTypes,
                    onError: projection.onError, setup: projection.setup, reset: projection.reset,
                    handlers: projection.handlers, partitions: projection.partitions,
                    preparedStatements: self.database.pooling == .session, publishes: projection.publish,
                    replaces: projection.replaces, drop: projection.drop, decrypt: projection.decrypt,
                    encryptedFields: projection.encryptedFields, retryParked: projection.retryParked,
                    resetAggregate: projection.resetAggregate)
            } catch let error as SQLProjection.DefinitionError {
                let count =
                    error.key == "reset_aggregate"
                    ? projection.resetAggregate.count : projection.handlers.first { $0.eventType == error.eventType }?.statements.count ?? 1
                let key = error.key == "reset_aggregate" ? "reset_aggregate" : "handlers.\(error.eventType)"
                let path = "projections[\(index)].\(key)" + (count > 1 ? "[\(error.index)]" : "")
                throw ConfigurationError(file: self.file, keyPath: path, line: projection.line, message: error.message)
            }
        }
    }

    /// The projection named `name`, or nil.
    public func sqlProjection(named name: String) throws -> SQLProjection? {
        try self.sqlProjections().first { $0.name == name }
    }
}
