import Postgres
import Projections

/// Has the server parse and plan every handler (and `reset_aggregate`) statement of the configured SQL projections, the
/// way the runtime sends it (named parameters rewritten to `$1..$n`, bound with their types),
/// so that a typo or a missing table or column is refused by `migrate` and `check` instead of
/// failing the first event that reaches it. Nothing runs.
struct HandlerCheck: Sendable {
    let configuration: ProjectionistConfiguration

    /// - Returns: how many statements the server accepted.
    /// - Throws: `ConfigurationError` naming every statement the server refused (projection,
    ///   event type, key path and the server's message). Each is parsed under a savepoint, so
    ///   the transaction stays usable and every problem is reported at once.
    @discardableResult
    func run(in tx: Transaction) async throws -> Int {
        var refused: [(path: String, line: Int?, text: String)] = []
        var accepted = 0
        for (index, projection) in try self.configuration.sqlProjections().enumerated() {
            let line = self.configuration.projections[index].line
            /// Parses one statement under a savepoint; a refusal is recorded under `path`.
            func parse(_ sql: String, types: [UInt32], path: String, what: String) async throws -> Bool {
                try await tx.query("SAVEPOINT projectionist_handler_check")
                do {
                    try await tx.connection.parse(sql, types: types)
                    try await tx.query("RELEASE SAVEPOINT projectionist_handler_check")
                    return true
                } catch let error as PostgresError where error.code == .server {
                    try await tx.query("ROLLBACK TO SAVEPOINT projectionist_handler_check")
                    refused.append(
                        (path, line, "projection \(projection.name), \(what): the server refuses its SQL: \(error.message)"
                            + (error.sqlState.map { " [\($0)]" } ?? "")))
                    return false
                }
            }
            for eventType in projection.handlers.keys.sorted() {
                let statements = projection.handlers[eventType]!
                for (position, statement) in statements.enumerated() {
                    let path = "projections[\(index)].handlers.\(eventType)" + (statements.count > 1 ? "[\(position)]" : "")
                    let types = statement.rewritten.names.map { SQLProjection.parameterTypes[$0]! }
                    if try await parse(statement.rewritten.sql, types: types, path: path, what: "handler \(eventType)") { accepted += 1 }
                }
            }
            // reset_aggregate too (not counted: it is no handler), with its two text parameters.
            let resets = projection.resetAggregateStatements
            for (position, statement) in resets.enumerated() {
                let path = "projections[\(index)].reset_aggregate" + (resets.count > 1 ? "[\(position)]" : "")
                _ = try await parse(statement.sql, types: statement.names.map { _ in PostgresType.text }, path: path, what: "reset_aggregate")
            }
        }
        let advice = ". Fix the handler SQL (nothing was changed)"
        if refused.count == 1 {
            throw ConfigurationError(file: self.configuration.file, keyPath: refused[0].path, line: refused[0].line, message: refused[0].text + advice)
        }
        guard refused.isEmpty else {
            throw ConfigurationError(
                file: self.configuration.file, message: refused.map { "\($0.path): \($0.text)" }.joined(separator: "; ") + advice)
        }
        return accepted
    }
}
