import CLibPQ

/// A NOTIFY received on a channel this connection LISTENs on.
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var senderPID: Int32
}

extension PostgresConnection {
    /// Starts listening on `channel` (quoted as an identifier).
    public nonisolated func listen(_ channel: String) async throws {
        try await self.query("LISTEN \(QualifiedName.quoteIdentifier(channel))")
    }

    /// Stops listening on `channel`.
    public nonisolated func unlisten(_ channel: String) async throws {
        try await self.query("UNLISTEN \(QualifiedName.quoteIdentifier(channel))")
    }

    /// Notifications as they arrive, in order. Waiting blocks only this connection's queue in
    /// `poll(2)` on its socket: nothing is sent to the server while idle. The sequence ends when
    /// the iterating task is cancelled and throws `.connectionLost` when the connection breaks.
    /// Use a dedicated connection: other calls on it wait while a notification is awaited.
    public nonisolated func notifications() -> Notifications { Notifications(connection: self) }

    /// The notifications of one connection; see `notifications()`.
    public struct Notifications: AsyncSequence, Sendable {
        let connection: PostgresConnection

        public func makeAsyncIterator() -> Iterator { Iterator(connection: self.connection) }

        public struct Iterator: AsyncIteratorProtocol {
            let connection: PostgresConnection
            public mutating func next() async throws -> PostgresNotification? {
                try await self.connection.nextNotification()
            }
        }
    }

    /// The next notification, or nil once the calling task is cancelled.
    nonisolated func nextNotification() async throws -> PostgresNotification? {
        if Task.isCancelled { return nil }
        return try await withTaskCancellationHandler {
            try await self.uncancellable { connection in try connection.awaitNotification() }
        } onCancel: {
            self.wake()
        }
    }

    private func awaitNotification() throws -> PostgresNotification? {
        while true {
            if !self.pendingNotifications.isEmpty { return self.pendingNotifications.removeFirst() }
            if Task.isCancelled { return nil }
            let handle = try self.requireHandle()
            let events = try self.waitForSocket(Int16(POLLIN))
            guard events != 0 else { continue }  // woken: re-check cancellation
            guard PQconsumeInput(handle) == 1 else {
                throw PostgresError.fromConnection(handle, configuration: self.configuration)
            }
            self.collectNotifications()
        }
    }

    /// Moves notifications libpq has parsed into the pending queue.
    func collectNotifications() {
        guard let handle = self.handle else { return }
        while let notify = PQnotifies(handle) {
            let value = notify.pointee
            self.pendingNotifications.append(
                PostgresNotification(
                    channel: String(cString: value.relname), payload: String(cString: value.extra),
                    senderPID: value.be_pid))
            PQfreemem(notify)
        }
    }
}
