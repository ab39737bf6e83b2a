import EventStore
import Postgres
import Projections
import TestSupport

/// A migrated database with the test read models.
func projectionDatabase(_ label: String) async throws -> TestDatabase {
    let db = try await TestDatabase.migrated(label)
    let connection = try await db.connect()
    try await connection.execute(script: OrderWorkload.readModelSQL + ";" + CounterProjection.setupSQL)
    await connection.close()
    return db
}

/// The projection's checkpoint; -1 while it has no row.
func checkpoint(_ name: String, on connection: PostgresConnection) async throws -> Int64 {
    try await CheckpointStore().position(name, on: connection) ?? -1
}

/// The projection's checkpoint row as the daemon left it; nil while it has none.
func record(_ name: String, on connection: PostgresConnection) async throws -> CheckpointRecord? {
    try await CheckpointStore().records([name], on: connection).first
}

func head(on connection: PostgresConnection) async throws -> Int64 {
    try await EventStore().latestPosition(on: connection)
}
