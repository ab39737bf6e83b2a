import EventStore
import Postgres
import Projections
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(1)))
struct StartupCheckTests {
    @Test("a migrated database passes; a missing events column is named", arguments: PersistedEvent.columns)
    func eventColumns(dropped: String) async throws {
        let db = try await TestDatabase.migrated("startup")
        let connection = try await db.connect()
        try await StartupCheck.verify(Schema(), allowSequenceCache: false, on: connection)
        try await connection.query("ALTER TABLE events DROP COLUMN \(QualifiedName.quoteIdentifier(dropped)) CASCADE")
        let error = await #expect(throws: SchemaError.self) {
            try await StartupCheck.verify(Schema(), allowSequenceCache: false, on: connection)
        }
        #expect(error?.message == "table events lacks column(s) \(dropped): run `projectionist migrate` first")
    }
}
