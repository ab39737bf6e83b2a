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

/// A `keys destroy` that commits after a batch was decrypted and before its events are applied
/// (while a failing event is retried, or while a batch read ahead waits its turn): the events
/// apply with that subject's fields `null`, never with the plaintext decrypted earlier.
@Suite(.database, .timeLimit(.minutes(2)))
struct DecryptionWindowTests {
    /// Whether the gated event may apply yet, and how often its handler was called.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, attempts: Int)>((false, 0))
        func open() { self.state.withLock { $0.open = true } }
        /// Counts an attempt; true when the gate is open.
        func attempt() -> Bool { self.state.withLock { $0.attempts += 1; return $0.open } }
        var attempts: Int { self.state.withLock { $0.attempts } }
    }

    struct Closed: Error {}

    /// Writes each order's email (null once the customer's keys are destroyed). The handler of
    /// order `gated` fails (`failing`), or waits, while the gate is closed.
    struct Emails: Projection {
        let name: String
        let gated: String
        let failing: Bool
        let gate: Gate
        var aggregateTypes: [String]? { ["Order"] }
        var decryptsPayloads: Bool { true }
        var onError: OnError { .stop }

        func handle(_ event: PersistedEvent, in transaction: Transaction) async throws {
            if event.aggregateID == self.gated {
                if self.failing {
                    if !self.gate.attempt() { throw Closed() }
                } else {
                    _ = self.gate.attempt()
                    while !self.gate.attempt() { try await Task.sleep(for: .milliseconds(10)) }
                }
            }
            try await transaction.query(
                "INSERT INTO window_emails (order_id, email) VALUES ($1, $2::jsonb->'customer'->>'email')",
                [event.aggregateID, String(decoding: event.payload, as: UTF8.self)])
        }
    }

    /// Orders o1…oN for customers c1…cN, each email encrypted under its customer's key.
    static func setUp(_ label: String, orders: Int) async throws -> (TestDatabase, PostgresConnection, KeyStore) {
        let db = try await projectionDatabase(label)
        let connection = try await db.connect()
        try await connection.execute(script: KeyStore.migrationSQL() + ";CREATE TABLE window_emails (order_id text PRIMARY KEY, email text)")
        let keyStore = KeyStore(keyring: try SystemKeyring(keys: ["k1": SymmetricKey(size: .bits256)], activeKeyID: "k1"))
        for index in 1...orders {
            try await connection.transaction { tx in
                let field = try await FieldEncryptor(keyStore: keyStore).encrypt(["email": "c\(index)@example.com"], scope: "pii", scopeID: "c\(index)", on: tx)
                let payload = #"{"customer":\#(String(decoding: field.jsonBytes, as: UTF8.self))}"#
                _ = try await EventStore().append(
                    [Event(aggregateType: "Order", aggregateID: "o\(index)", eventType: "OrderPlaced", payload: Array(payload.utf8))],
                    expected: .noStream, in: tx)
            }
        }
        return (db, connection, keyStore)
    }

    static func emails(_ connection: PostgresConnection) async throws -> [String: String?] {
        var result: [String: String?] = [:]
        for row in try await connection.query("SELECT order_id, email FROM window_emails") {
            result[try row.decode(String.self, at: 0)] = try row.decode(String?.self, at: 1)
        }
        return result
    }

    @Test("keys destroyed while a failing event is isolated and retried: the retry applies it with the field null")
    func destroyedDuringRetries() async throws {
        let (db, connection, keyStore) = try await Self.setUp("window_retry", orders: 3)
        let gate = Gate()
        let projection = Emails(name: "window_retry", gated: "o2", failing: true, gate: gate)
        let options = testOptions {
            $0.decryptor = PayloadDecryptor(keyStore: keyStore, freshness: .checkedEachCall)
            $0.handlerRetries = 30
            $0.handlerRetryDelay = .milliseconds(20)
        }
        let worker = try RunningWorker(db, [projection], options: options)
        // The batch failed, isolation found o2, and a retry failed too: o2's decrypted payload is
        // what the failure path holds.
        try await eventually("o2 failed in the batch, in isolation and on a retry") { gate.attempts >= 3 }
        try await connection.transaction { tx in _ = try await keyStore.destroyKeys(scope: "pii", scopeID: "c2", on: tx) }
        gate.open()
        let last = try await head(on: connection)
        try await eventually("the projection caught up") { try await checkpoint("window_retry", on: connection) == last }
        await worker.stop()
        let emails = try await Self.emails(connection)
        #expect(emails["o1"] == "c1@example.com" && emails["o3"] == "c3@example.com", "\(emails)")
        #expect(emails["o2"] == .some(nil), "o2's customer was forgotten before o2 applied: \(String(describing: emails["o2"]))")
    }

    @Test("keys destroyed after a batch was read ahead and before it applies: it applies with the field null")
    func destroyedAfterReadAhead() async throws {
        let (db, connection, keyStore) = try await Self.setUp("window_ahead", orders: 6)
        let gate = Gate()
        // Batches of 2: the first transaction applies o1, o2 and finds the log full; the next one
        // applies o3, o4 (o3 waits at the gate) while the reader decrypts o5, o6 ahead.
        let projection = Emails(name: "window_ahead", gated: "o3", failing: false, gate: gate)
        let options = testOptions {
            $0.decryptor = PayloadDecryptor(keyStore: keyStore, freshness: .checkedEachCall)
            $0.batchSize = 2
        }
        let worker = try RunningWorker(db, [projection], options: options)
        try await eventually("o3 waits at the gate") { gate.attempts >= 1 }
        // The read-ahead's read and key query take milliseconds; the transaction stays open well
        // within the server's idle timeout (5 s).
        try await Task.sleep(for: .seconds(1))
        try await connection.transaction { tx in _ = try await keyStore.destroyKeys(scope: "pii", scopeID: "c5", on: tx) }
        gate.open()
        let last = try await head(on: connection)
        try await eventually("the projection caught up") { try await checkpoint("window_ahead", on: connection) == last }
        await worker.stop()
        let emails = try await Self.emails(connection)
        #expect(emails.count == 6 && emails["o6"] == "c6@example.com", "\(emails)")
        #expect(emails["o5"] == .some(nil), "o5's customer was forgotten before o5 applied: \(String(describing: emails["o5"]))")
    }
}
