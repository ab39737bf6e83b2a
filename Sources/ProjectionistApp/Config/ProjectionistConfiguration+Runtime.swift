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

    /// The SQL projections, compiled.
    /// - Throws: `ConfigurationError` naming the handler (key path, line) whose SQL is refused.
    public func sqlProjections() throws -> [SQLProjection] {
        try self.projections.enumerated().map { index, projection in
            do {
                return try SQLProjection(
                    name: projection.name, aggregateTypes: projection.aggregateTypes,
                    onError: projection.onError == .skip ? .skip : .stop, setup: projection.setup, reset: projection.reset,
                    handlers: projection.handlers, partitions: projection.partitions,
                    preparedStatements: self.database.pooling == .session, publishes: projection.publish,
                    replaces: projection.replaces, drop: projection.drop, decrypt: projection.decrypt,
                    encryptedFields: projection.encryptedFields)
            } catch let error as SQLProjection.DefinitionError {
                let count = projection.handlers.first { $0.eventType == error.eventType }?.statements.count ?? 1
                let path = "projections[\(index)].handlers.\(error.eventType)" + (count > 1 ? "[\(error.index)]" : "")
                throw ConfigurationError(file: self.file, keyPath: path, line: projection.line, message: error.message)
            }
        }
    }

    /// The projection named `name`, or nil.
    public func sqlProjection(named name: String) throws -> SQLProjection? {
        try self.sqlProjections().first { $0.name == name }
    }
}
