import EventStore
import Foundation
import Postgres
@testable import Projections
import Synchronization
import TestSupport
import TestTraits
import Testing

/// The fencing step every batch transaction opens with (`CheckpointStore.lock`), against the
/// real server: a newer owner waits for the old owner's open batch, and after it raised the
/// token the old owner can never commit; a frozen owner's transaction is ended by the server
/// or by the new owner.
@Suite(.database, .runsAlone(.timed), .timeLimit(.minutes(1)))
struct FencingTests {
    let store = CheckpointStore()

    func lock(_ unit: String, token: Int64, idle: Duration = .seconds(60), in tx: Transaction) async throws -> Int64 {
        try await self.store.lock(unit, token: token, idleTimeout: idle, in: tx).position
    }

    func advance(_ unit: String, to position: Int64, token: Int64, in tx: Transaction) async throws {
        var status = ProjectionStatus(name: unit)
        status.position = position
        let (sql, parameters) = self.store.advanceStatement(unit, to: position, token: token, status: status)
        try await tx.query(sql, parameters)
    }

    @Test("a newer owner waits for the old owner's open batch and continues from its commit; after that the old token is refused")
    func newerOwnerWaitsThenFences() async throws {
        let db = try await TestDatabase.migrated("fence_wait")
        let old = try await db.connect()
        let new = try await db.connect()
        try await self.store.ensureRow("u", on: old)  // the runner's start creates it; the fencing step never does
        let newDone = Flag()
        let newOwner = try await old.transaction { tx in
            #expect(try await self.lock("u", token: 1, in: tx) == 0)
            let newOwner = Task {
                try await new.transaction { tx in
                    let position = try await self.lock("u", token: 2, in: tx)
                    newDone.set()
                    try await self.advance("u", to: position + 1, token: 2, in: tx)
                    return position
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let waiting = !newDone.isSet
            #expect(waiting, "the new owner must wait for the row the old batch holds")
            try await self.advance("u", to: 5, token: 1, in: tx)
            return newOwner  // committing hands the row over; the new owner then reads 5
        }
        #expect(try await newOwner.value == 5)
        #expect(try await self.store.position("u", on: old) == 6)
        await #expect(throws: FencedError.self) {
            try await old.transaction { tx in
                _ = try await self.lock("u", token: 1, in: tx)
                try await self.advance("u", to: 100, token: 1, in: tx)
            }
        }
        #expect(try await self.store.position("u", on: old) == 6)
        // The old owner's state writes are no-ops now; the new owner's still land.
        var status = ProjectionStatus(name: "u")
        status.state = .failed
        try await self.store.recordState("u", token: 1, status: status, on: old)
        #expect(try await self.store.records(["u"], on: old).first?.state == "catching_up", "as the new owner's batch left it")
        try await self.store.recordState("u", token: 2, status: status, on: old)
        #expect(try await self.store.records(["u"], on: old).first?.state == "failed")
    }

    @Test("the fencing step never creates a row: a missing one is CheckpointDeletedError, a newer token FencedError")
    func missingRowIsNotCreated() async throws {
        let db = try await TestDatabase.migrated("fence_missing")
        let connection = try await db.connect()
        await #expect(throws: CheckpointDeletedError.self) {
            try await connection.transaction { tx in _ = try await self.lock("gone", token: 1, in: tx) }
        }
        #expect(try await self.store.position("gone", on: connection) == nil)
        try await self.store.ensureRow("gone", on: connection)
        try await connection.transaction { tx in _ = try await self.lock("gone", token: 5, in: tx) }
        await #expect(throws: FencedError.self) {
            try await connection.transaction { tx in _ = try await self.lock("gone", token: 4, in: tx) }
        }
    }

    @Test("the server ends a frozen owner's idle batch transaction after its idle timeout, freeing the row for the new owner")
    func frozenOwnerEndedByServer() async throws {
        let db = try await TestDatabase.migrated("fence_idle")
        let frozen = try await db.connect()
        let new = try await db.connect()
        try await self.store.ensureRow("u", on: new)
        let frozenTask = Task {
            try await frozen.transaction { tx in
                _ = try await self.lock("u", token: 1, idle: .seconds(1), in: tx)
                // Frozen: no statement for far longer than the idle timeout (and than a loaded machine's delays).
                try await Task.sleep(for: .seconds(8))
                try await self.advance("u", to: 50, token: 1, in: tx)
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        let clock = ContinuousClock()
        let started = clock.now
        try await new.transaction { tx in
            #expect(try await self.lock("u", token: 2, in: tx) == 0)
            try await self.advance("u", to: 1, token: 2, in: tx)
        }
        let waited = clock.now - started
        // The server ended it (idle timeout 1 s), well before the frozen owner would have woken (8 s).
        #expect(waited < .seconds(6), "waited \(waited)")
        await #expect(throws: (any Error).self) { try await frozenTask.value }
        #expect(try await self.store.position("u", on: new) == 1)
    }

    @Test("a new owner ends the open transactions of the owners it fences off, and no other")
    func newOwnerEndsFencedTransactions() async throws {
        let db = try await TestDatabase.migrated("fence_end")
        let fenced = try await db.connect()
        let otherUnit = try await db.connect()
        let newer = try await db.connect()
        let admin = try await db.connect()
        for unit in ["u", "v"] { try await self.store.ensureRow(unit, on: admin) }
        // Open batch transactions: unit u under token 1, unit v under token 1, then unit u under token 3.
        let fencedBatch = Self.openBatch(fenced, "u", token: 1)
        let otherBatch = Self.openBatch(otherUnit, "v", token: 1)
        let fencedPID = await fenced.backendPID
        let otherPID = await otherUnit.backendPID
        try await eventually("both batches are open") { try await Self.inTransaction([fencedPID, otherPID], on: admin).count == 2 }
        #expect(try await self.store.endFencedTransactions("u", token: 2, on: admin) == 1)
        try await eventually("the fenced batch's backend is gone") { try await Self.inTransaction([fencedPID], on: admin).isEmpty }
        #expect(try await Self.inTransaction([otherPID], on: admin) == [otherPID])
        let newerBatch = Self.openBatch(newer, "u", token: 3)
        let newerPID = await newer.backendPID
        try await eventually("the newer batch is open") { try await Self.inTransaction([newerPID], on: admin) == [newerPID] }
        #expect(try await self.store.endFencedTransactions("u", token: 2, on: admin) == 0, "a newer token is never ended")
        #expect(try await Self.inTransaction([newerPID], on: admin) == [newerPID])
        for batch in [fencedBatch, otherBatch, newerBatch] { batch.cancel() }
        await #expect(throws: (any Error).self) { try await fencedBatch.value }
    }

    /// A batch transaction of `unit` under `token` that stays open until cancelled.
    static func openBatch(_ connection: PostgresConnection, _ unit: String, token: Int64) -> Task<Void, any Error> {
        Task {
            try await connection.transaction { tx in
                _ = try await CheckpointStore().lock(unit, token: token, idleTimeout: .seconds(60), in: tx)
                try await Task.sleep(for: .seconds(50))
            }
        }
    }

    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { self.value.store(true, ordering: .sequentiallyConsistent) }
        var isSet: Bool { self.value.load(ordering: .sequentiallyConsistent) }
    }

    /// Which of `pids` are in an open batch transaction (tagged by its fencing step).
    static func inTransaction(_ pids: [Int32], on connection: PostgresConnection) async throws -> [Int32] {
        try await connection.query(
            "SELECT pid FROM pg_stat_activity WHERE pid::text = ANY($1::text[]) AND application_name LIKE 'projectionist %' ORDER BY pid",
            [PostgresTextArray(pids.map(String.init))]
        ).map { try $0.decode(Int32.self, at: 0) }
    }
}
