import EventStore
import Foundation
import Postgres
import TestSupport
import TestTraits
import Testing

@Suite(.database, .timeLimit(.minutes(1)))
struct WorkloadTests {
    @Test("Seeder writes in bulk exactly the orders OrderWorkload.order(n) builds")
    func seederMatchesWorkload() async throws {
        let db = try await TestDatabase.migrated("workload")
        let connection = try await db.connect()
        let written = try await Seeder.seedOrders(6, on: connection)
        let stored = try await EventStore().readEvents(after: 0, limit: 100, on: connection)
        let built = (0..<6).flatMap { OrderWorkload.order($0) }
        #expect(written == Int64(built.count))
        #expect(stored.count == built.count)
        for (seeded, expected) in zip(stored, built) {
            #expect(seeded.aggregateID == expected.aggregateID)
            #expect(seeded.eventType == expected.eventType)
            let seededPayload = try JSONSerialization.jsonObject(with: Data(seeded.payload)) as? NSDictionary
            let expectedPayload = try JSONSerialization.jsonObject(with: Data(expected.payload)) as? NSDictionary
            #expect(seededPayload != nil)
            #expect(seededPayload == expectedPayload, "\(seeded.aggregateID) v\(seeded.aggregateVersion) \(seeded.eventType)")
        }
    }
}
