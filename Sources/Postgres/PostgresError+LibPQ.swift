import CLibPQ
import Foundation

extension PostgresError {
    /// The error a failed `PGresult` describes; without a SQLSTATE on a broken connection it is
    /// `.connectionLost`.
    static func from(
        result: OpaquePointer?, connection: OpaquePointer?, configuration: ConnectionConfiguration,
        statementIndex: Int? = nil
    ) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let result, let value = PQresultErrorField(result, code) else { return nil }
            return configuration.scrub(String(cString: value))
        }
        let sqlState = field(CLibPQ_DIAG_SQLSTATE)
        var message = field(CLibPQ_DIAG_MESSAGE_PRIMARY)
        if message == nil, let result, let text = PQresultErrorMessage(result) {
            message = String(cString: text)
        }
        if message?.isEmpty ?? true, let connection {
            message = String(cString: PQerrorMessage(connection))
        }
        let text = configuration.scrub((message ?? "unknown error").trimmingCharacters(in: .whitespacesAndNewlines))
        let broken = connection.map { PQstatus($0) != CONNECTION_OK } ?? true
        let code: Code = sqlState == nil && broken ? .connectionLost : .server
        return PostgresError(
            code: code, message: text, sqlState: sqlState, detail: field(CLibPQ_DIAG_MESSAGE_DETAIL),
            hint: field(CLibPQ_DIAG_MESSAGE_HINT), constraint: field(CLibPQ_DIAG_CONSTRAINT_NAME),
            table: field(CLibPQ_DIAG_TABLE_NAME), schema: field(CLibPQ_DIAG_SCHEMA_NAME),
            column: field(CLibPQ_DIAG_COLUMN_NAME), statementIndex: statementIndex)
    }

    /// The connection-level error libpq holds (`PQerrorMessage`), scrubbed of secrets.
    static func fromConnection(
        _ connection: OpaquePointer?, configuration: ConnectionConfiguration, code: Code = .connectionLost
    ) -> PostgresError {
        let text = connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
        // libpq's messages span lines ("...failed: Connection refused\n\tIs the server running..."): one line for logs.
        let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return PostgresError(code: code, message: configuration.scrub(line.joined(separator: " ")))
    }
}

