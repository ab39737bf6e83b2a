import Crypto
import Encryption
import EventStore
import Foundation
import Postgres
import Projections
import Synchronization
import TestSupport
import TestTraits
import Testing

/// Swift projections and encrypted payloads: `decryptsPayloads` hands every handler the
/// decrypted event; `PersistedEvent.decrypted(with:on:)` decrypts on demand.
@Suite(.database, .timeLimit(.minutes(2)))
struct DecryptionTests {
    /// Records each OrderPlaced's payload as its handler saw it.
    struct Recorder: Projection {
        let name: String
        let decryptsPayloads: Bool
        /// Decrypts in the handler instead (with `decryptsPayloads` off).
        let onDemand: PayloadDecryptor?
        let seen = Seen()
        var aggregateTypes: [String]? { ["Order"] }

        func handle(_ event: PersistedEvent, in transaction: Transaction) async throws {
            var event = event
            if let decryptor = self.onDemand { event = try await event.decrypted(with: decryptor, on: transaction) }
            let payload = String(decoding: event.payload, as: UTF8.self)
            self.seen.withLock { $0[event.aggregateID] = payload }
        }
    }

    final class Seen: Sendable {
        let payloads = Mutex<[String: String]>([:])
        func withLock<T>(_ body: (inout [String: String]) -> T) -> T { self.payloads.withLock { body(&$0) } }
    }

    @Test("a Swift projection with decryptsPayloads sees the value, null once the keys are destroyed; on demand the same; a Worker without a decryptor refuses it")
    func swiftProjections() async throws {
        let db = try await projectionDatabase("decrypt")
        let connection = try await db.connect()
        try await connection.execute(script: KeyStore.migrationSQL())
        let keyStore = KeyStore(keyring: try SystemKeyring(keys: ["k1": SymmetricKey(size: .bits256)], activeKeyID: "k1"))
        for (order, customer) in [("o1", "c1"), ("o2", "c2")] {
            try await connection.transaction { tx in
                let field = try await FieldEncryptor(keyStore: keyStore).encrypt(["email": "\(customer)@example.com"], scope: "pii", scopeID: customer, on: tx)
                let payload = #"{"customer":\#(String(decoding: field.jsonBytes, as: UTF8.self))}"#
                _ = try await EventStore().append(
                    [Event(aggregateType: "Order", aggregateID: order, eventType: "OrderPlaced", payload: Array(payload.utf8))], expected: .noStream, in: tx)
            }
        }
        try await connection.transaction { tx in _ = try await keyStore.destroyKeys(scope: "pii", scopeID: "c2", on: tx) }

        let decryptor = PayloadDecryptor(keyStore: keyStore, freshness: .checkedEachCall)
        let decrypting = Recorder(name: "decrypting", decryptsPayloads: true, onDemand: nil)
        let onDemand = Recorder(name: "on_demand", decryptsPayloads: false, onDemand: decryptor)
        let plain = Recorder(name: "plain", decryptsPayloads: false, onDemand: nil)
        #expect(throws: SchemaError.self) { try Worker(projections: [decrypting], database: db.runtimeConfiguration, options: testOptions()) }

        var options = testOptions()
        options.decryptor = decryptor
        let worker = try RunningWorker(db, [decrypting, onDemand, plain], options: options)
        let last = try await head(on: connection)
        for name in ["decrypting", "on_demand", "plain"] {
            try await eventually("\(name) caught up") { try await checkpoint(name, on: connection) == last }
        }
        await worker.stop()
        for recorder in [decrypting, onDemand] {
            let seen = recorder.seen.withLock { $0 }
            #expect(seen["o1"] == #"{"customer":{"email":"c1@example.com"}}"#, "\(recorder.name)")
            #expect(seen["o2"] == #"{"customer":null}"#, "\(recorder.name)")
        }
        #expect(plain.seen.withLock { $0["o1"]?.contains("$encrypted") } == true, "without decryption the handler sees the field as written")
    }
}
