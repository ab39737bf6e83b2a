import CLibPQ
import Glibc

/// Statements to send in libpq pipeline mode: all of them go out before any result is read,
/// and one sync point ends the batch. Many statements cost about one round trip.
///
/// Outside an explicit transaction the statements up to the sync form one implicit
/// transaction: if one fails, none of them commits.
public struct Pipeline: Sendable {
    enum Statement: Sendable {
        case query(sql: String, parameters: [PostgresParameter])
        case prepared(name: String, parameters: [PostgresParameter])
    }
    var statements: [Statement] = []

    public init() {}

    public var count: Int { self.statements.count }
    public var isEmpty: Bool { self.statements.isEmpty }

    /// Adds a statement with bound parameters.
    public mutating func append(_ sql: String, _ parameters: [any PostgresEncodable] = []) {
        self.statements.append(.query(sql: sql, parameters: parameters.map(\.postgresParameter)))
    }

    /// Adds a statement with already-encoded parameters.
    public mutating func append(_ sql: String, encoded parameters: [PostgresParameter]) {
        self.statements.append(.query(sql: sql, parameters: parameters))
    }

    /// Adds a run of a statement prepared on the connection with `prepare(_:_:)`.
    public mutating func appendPrepared(_ name: String, _ parameters: [any PostgresEncodable] = []) {
        self.statements.append(.prepared(name: name, parameters: parameters.map(\.postgresParameter)))
    }

    /// Adds a run of a prepared statement with already-encoded parameters.
    public mutating func appendPrepared(_ name: String, encoded parameters: [PostgresParameter]) {
        self.statements.append(.prepared(name: name, parameters: parameters))
    }
}

extension PostgresConnection {
    /// Sends every statement of `pipeline`, then one sync, then reads every result.
    /// - Returns: one result per statement, in order.
    /// - Throws: the first failing statement's `PostgresError`, with `statementIndex` set;
    ///   the statements after it were not run. The connection is ready for use again either way.
    /// - Parameter discardingResults: free each result as it arrives and return none (for
    ///   writes: a batch of thousands of statements then holds no thousands of results).
    @discardableResult
    public nonisolated func execute(_ pipeline: Pipeline, discardingResults: Bool = false) async throws -> [QueryResult] {
        if pipeline.isEmpty { return [] }
        return try await self.cancellable { connection in
            try connection.runPipeline(pipeline.statements, discardingResults: discardingResults)
        }
    }

    private func runPipeline(_ statements: [Pipeline.Statement], discardingResults: Bool) throws -> [QueryResult] {
        let handle = try self.requireHandle()
        guard PQenterPipelineMode(handle) == 1 else {
            throw PostgresError.fromConnection(handle, configuration: self.configuration, code: .usage)
        }
        // Non-blocking while sending: if the server's replies fill our socket while we still send,
        // a blocking write would deadlock against a server blocked writing to us.
        PQsetnonblocking(handle, 1)
        defer {
            PQsetnonblocking(handle, 0)
            PQexitPipelineMode(handle)
        }
        var reader = PipelineReader(count: discardingResults ? 0 : statements.count)
        for (index, statement) in statements.enumerated() {
            let sent: Int32 =
                switch statement {
                case .query(let sql, let parameters):
                    Self.withParameterArrays(parameters) { types, values, lengths, formats in
                        PQsendQueryParams(handle, sql, Int32(parameters.count), types, values, lengths, formats, 1)
                    }
                case .prepared(let name, let parameters):
                    Self.withParameterArrays(parameters) { _, values, lengths, formats in
                        PQsendQueryPrepared(handle, name, Int32(parameters.count), values, lengths, formats, 1)
                    }
                }
            guard sent == 1 else { throw PostgresError.fromConnection(handle, configuration: self.configuration) }
            if index % 32 == 31 { try self.flush(handle, reader: &reader) }
        }
        guard PQpipelineSync(handle) == 1 else {
            throw PostgresError.fromConnection(handle, configuration: self.configuration)
        }
        try self.flush(handle, reader: &reader)
        while !reader.synced {
            if PQisBusy(handle) == 1 { _ = try self.waitForSocket(Int16(POLLIN)) }
            try self.read(handle, reader: &reader)
        }
        if let error = reader.firstError { throw error }
        return reader.results.compactMap { $0 }
    }

    /// Sends everything buffered, reading replies whenever the server has some, so neither side blocks.
    private func flush(_ handle: OpaquePointer, reader: inout PipelineReader) throws {
        while true {
            let state = PQflush(handle)
            if state == 0 { return }
            if state < 0 { throw PostgresError.fromConnection(handle, configuration: self.configuration) }
            let events = try self.waitForSocket(Int16(POLLIN | POLLOUT))
            if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 { try self.read(handle, reader: &reader) }
        }
    }

    /// Consumes what has arrived and takes every complete result.
    private func read(_ handle: OpaquePointer, reader: inout PipelineReader) throws {
        guard PQconsumeInput(handle) == 1 else {
            throw PostgresError.fromConnection(handle, configuration: self.configuration)
        }
        self.collectNotifications()
        while !reader.synced, PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else {
                // NULL ends one statement's results; with nothing in progress there is nothing more yet.
                if reader.awaitingEnd {
                    reader.awaitingEnd = false
                    reader.next += 1
                    continue
                }
                return
            }
            let index = reader.next
            switch PQresultStatus(result) {
            case PGRES_PIPELINE_SYNC:
                PQclear(result)
                reader.synced = true
            case PGRES_PIPELINE_ABORTED:
                PQclear(result)
                reader.awaitingEnd = true
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                if index < reader.results.count { reader.results[index] = QueryResult(taking: result) } else { PQclear(result) }
                reader.awaitingEnd = true
            default:
                let error = PostgresError.from(
                    result: result, connection: handle, configuration: self.configuration, statementIndex: index)
                PQclear(result)
                if reader.firstError == nil { reader.firstError = error }
                reader.awaitingEnd = true
            }
        }
    }
}

/// Where the reading of a pipeline's results stands.
private struct PipelineReader {
    var results: [QueryResult?]
    var next = 0
    var awaitingEnd = false
    var synced = false
    var firstError: PostgresError?
    init(count: Int) { self.results = Array(repeating: nil, count: count) }
}
