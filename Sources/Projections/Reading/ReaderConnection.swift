import Postgres

/// The shared reader's connection, opened on first use and again after it broke.
actor ReaderConnection {
    let database: ConnectionConfiguration
    private var connection: PostgresConnection?

    init(database: ConnectionConfiguration) { self.database = database }

    func use<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let current: PostgresConnection
        if let open = self.connection, await open.isConnected { current = open } else {
            current = try await PostgresConnection.connect(self.database)
            self.connection = current
        }
        do {
            return try await body(current)
        } catch {
            if !(await current.isConnected) {
                await current.close()
                self.connection = nil
            }
            throw error
        }
    }
}
