/// An error from the database or from the client library.
///
/// `description` is written for a log: it never contains the connection string or the password,
/// and it carries the server's fields (SQLSTATE, detail, hint, constraint) when there are any.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, at the level code acts on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case connectionFailed, connectionLost, server, decoding, usage, cancelled }
        private let base: Base
        /// Could not connect (bad address, authentication failed, server not up).
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The connection broke while in use; the connection is unusable afterwards.
        public static let connectionLost = Code(base: .connectionLost)
        /// The server reported an error; `sqlState` says which.
        public static let server = Code(base: .server)
        /// A value could not be decoded to the requested Swift type.
        public static let decoding = Code(base: .decoding)
        /// The API was used in a way it does not support (e.g. a closed connection).
        public static let usage = Code(base: .usage)
        /// The calling task was cancelled before the statement was sent.
        public static let cancelled = Code(base: .cancelled)
        public var description: String { self.base.rawValue }
    }

    public var code: Code
    /// One line, from the server or libpq, with any password removed.
    public var message: String
    /// Five characters, from `PG_DIAG_SQLSTATE`.
    public var sqlState: String?
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var table: String?
    public var schema: String?
    public var column: String?
    /// The index of the failing statement inside a pipeline.
    public var statementIndex: Int?

    public init(
        code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, table: String? = nil, schema: String? = nil, column: String? = nil,
        statementIndex: Int? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.schema = schema
        self.column = column
        self.statementIndex = statementIndex
    }

    /// The connection is gone (class 08, administrator shutdown, crash); open a new one.
    public var isConnectionLost: Bool {
        if self.code == .connectionLost || self.code == .connectionFailed { return true }
        guard let state = self.sqlState else { return false }
        return state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03"
    }

    /// A retry (on a new connection where `isConnectionLost`) may succeed: connection loss,
    /// serialization failure `40001`, deadlock `40P01`, insufficient resources (class 53).
    /// Everything else is permanent: retrying the same statement will fail the same way.
    public var isTransient: Bool {
        if self.isConnectionLost { return true }
        guard let state = self.sqlState else { return false }
        return state == "40001" || state == "40P01" || state.hasPrefix("53")
    }

    /// Unique violation, `23505`.
    public var isUniqueViolation: Bool { self.sqlState == "23505" }

    public var description: String {
        var text = "\(self.code): \(self.message)"
        if let sqlState { text += " [\(sqlState)]" }
        if let statementIndex { text += " (statement \(statementIndex) of the pipeline)" }
        if let constraint { text += " constraint: \(constraint)" }
        if let detail { text += " detail: \(detail)" }
        if let hint { text += " hint: \(hint)" }
        return text
    }
}
