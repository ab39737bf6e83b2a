import CLibPQ
import Glibc

/// A pipeline sent and not yet read: `PostgresConnection.results(of:)` reads its results.
public struct PipelineTicket: Sendable, Hashable {
    let id: Int
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
        let ticket = try await self.send(pipeline, discardingResults: discardingResults)
        return try await self.results(of: ticket)
    }

    /// Sends every statement of `pipeline` and a sync, without waiting for the results: the
    /// server works on it while the caller prepares the next one. Several pipelines may be in
    /// flight; `results(of:)` reads each, in any order of asking (results arrive in send order).
    ///
    /// While a pipeline is in flight the connection is in pipeline mode: plain statements
    /// (`query`, `execute(script:)`) fail until every ticket's results were read. After an error
    /// in one pipeline, the statements of a later one in the same explicit transaction fail
    /// with `25P02` (the transaction is aborted).
    public nonisolated func send(_ pipeline: Pipeline, discardingResults: Bool = false) async throws -> PipelineTicket {
        try await self.cancellable { connection in
            try connection.runSend(pipeline.statements, discardingResults: discardingResults)
        }
    }

    /// Reads until `ticket`'s sync and returns its results (none when sent `discardingResults`).
    /// - Throws: its first failing statement's `PostgresError`, with `statementIndex` set.
    @discardableResult
    public nonisolated func results(of ticket: PipelineTicket) async throws -> [QueryResult] {
        try await self.cancellable { connection in try connection.runResults(ticket) }
    }

    private func runSend(_ statements: [Pipeline.Statement], discardingResults: Bool) throws -> PipelineTicket {
        let handle = try self.requireHandle()
        if !self.pipelines.active {
            guard PQenterPipelineMode(handle) == 1 else {
                throw PostgresError.fromConnection(handle, configuration: self.configuration, code: .usage)
            }
            // Non-blocking while sending: if the server's replies fill our socket while we still send,
            // a blocking write would deadlock against a server blocked writing to us.
            PQsetnonblocking(handle, 1)
            self.pipelines.active = true
        }
        let ticket = PipelineTicket(id: self.pipelines.nextID)
        self.pipelines.nextID += 1
        self.pipelines.reading.append(PipelineReader(ticket: ticket, count: discardingResults ? 0 : statements.count))
        do {
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
                if index % 32 == 31 { try self.flush(handle) }
            }
            guard PQpipelineSync(handle) == 1 else {
                throw PostgresError.fromConnection(handle, configuration: self.configuration)
            }
            try self.flush(handle)
        } catch {
            // Half a pipeline is on the wire: the protocol state is unknowable. Only a new
            // connection is safe (the server rolls back what this one had open).
            self.close()
            throw error
        }
        return ticket
    }

    private func runResults(_ ticket: PipelineTicket) throws -> [QueryResult] {
        while self.pipelines.finished[ticket] == nil {
            guard self.pipelines.reading.contains(where: { $0.ticket == ticket }) else {
                throw PostgresError(code: .usage, message: "no pipeline in flight for this ticket (read already, or the connection was closed)")
            }
            let handle = try self.requireHandle()
            if PQisBusy(handle) == 1 { _ = try self.waitForSocket(Int16(POLLIN)) }
            try self.read(handle)
        }
        let outcome = self.pipelines.finished.removeValue(forKey: ticket)!
        if self.pipelines.reading.isEmpty && self.pipelines.finished.isEmpty, let handle = self.handle {
            PQsetnonblocking(handle, 0)
            PQexitPipelineMode(handle)
            self.pipelines.active = false
        }
        return try outcome.get()
    }

    /// Sends everything buffered, reading replies whenever the server has some, so neither side blocks.
    private func flush(_ handle: OpaquePointer) throws {
        while true {
            let state = PQflush(handle)
            if state == 0 { return }
            if state < 0 { throw PostgresError.fromConnection(handle, configuration: self.configuration) }
            let events = try self.waitForSocket(Int16(POLLIN | POLLOUT))
            if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 { try self.read(handle) }
        }
    }

    /// Consumes what has arrived and hands every complete result to the pipeline it belongs to.
    private func read(_ handle: OpaquePointer) throws {
        guard PQconsumeInput(handle) == 1 else {
            throw PostgresError.fromConnection(handle, configuration: self.configuration)
        }
        self.collectNotifications()
        while !self.pipelines.reading.isEmpty, PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else {
                // NULL ends one statement's results; with nothing in progress there is nothing more yet.
                if self.pipelines.reading[0].awaitingEnd {
                    self.pipelines.reading[0].awaitingEnd = false
                    self.pipelines.reading[0].next += 1
                    continue
                }
                return
            }
            let index = self.pipelines.reading[0].next
            switch PQresultStatus(result) {
            case PGRES_PIPELINE_SYNC:
                PQclear(result)
                let reader = self.pipelines.reading.removeFirst()
                self.pipelines.finished[reader.ticket] =
                    if let error = reader.firstError { .failure(error) } else { .success(reader.results.compactMap { $0 }) }
            case PGRES_PIPELINE_ABORTED:
                PQclear(result)
                self.pipelines.reading[0].awaitingEnd = true
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                if index < self.pipelines.reading[0].results.count {
                    self.pipelines.reading[0].results[index] = QueryResult(taking: result)
                } else {
                    PQclear(result)
                }
                self.pipelines.reading[0].awaitingEnd = true
            default:
                let error = PostgresError.from(
                    result: result, connection: handle, configuration: self.configuration, statementIndex: index)
                PQclear(result)
                if self.pipelines.reading[0].firstError == nil { self.pipelines.reading[0].firstError = error }
                self.pipelines.reading[0].awaitingEnd = true
            }
        }
    }
}

/// The pipelines of one connection that were sent and not yet read, in send order.
struct PipelinesInFlight {
    var active = false
    var nextID = 0
    var reading: [PipelineReader] = []
    var finished: [PipelineTicket: Result<[QueryResult], PostgresError>] = [:]
}

/// Where the reading of one pipeline's results stands.
struct PipelineReader {
    let ticket: PipelineTicket
    var results: [QueryResult?]
    var next = 0
    var awaitingEnd = false
    var firstError: PostgresError?
    init(ticket: PipelineTicket, count: Int) {
        self.ticket = ticket
        self.results = Array(repeating: nil, count: count)
    }
}
