import EventStore
import Postgres
import TestSupport

/// A migrated database with the test read models.
func projectionDatabase(_ label: String) async throws -> TestDatabase {
    let db = try await TestDatabase.migrated(label)
    let connection = try await db.connect()
    try await connection.execute(script: OrderWorkload.readModelSQL + ";" + CounterProjection.setupSQL)
    await connection.close()
    return db
}

func checkpoint(_ name: String, on connection: PostgresConnection) async throws -> Int64 {
    try await connection.query("SELECT last_position FROM consumer_checkpoints WHERE consumer_name = $1", [name])
        .first?.decode(Int64.self, at: 0) ?? -1
}

func head(on connection: PostgresConnection) async throws -> Int64 {
    try await EventStore().latestPosition(on: connection)
}
