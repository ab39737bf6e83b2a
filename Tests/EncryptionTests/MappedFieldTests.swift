import Crypto
import Encryption
import EventStore
import Foundation
import Postgres
import TestTraits
import Testing

/// Encrypted fields in a layout of the application's own (`EncryptedFieldMapping`).
@Suite(.database) struct MappedFieldTests {
    static func event(_ payload: String, aggregateID: String = "o1", position: Int64 = 1) -> PersistedEvent {
        PersistedEvent(
            globalPosition: position, aggregateType: "Order", aggregateID: aggregateID, aggregateVersion: 1, eventID: UUID(),
            eventType: "OrderPlaced", eventVersion: 1, payload: Array(payload.utf8), metadata: nil, traceID: nil, correlationID: nil,
            causationID: nil, createdAt: PostgresTimestamp(Date()))
    }

    static func object(_ event: PersistedEvent) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(event.payload)) as! [String: Any]
    }

    @Test("string and JSON plaintexts at nested paths; scope id from the payload or the aggregate id; a literal version; absent fields left alone; destroyed keys give null")
    func decrypts() async throws {
        let (_, connection) = try await Fixtures.database()
        let (keyring, _) = try Fixtures.keyring(["k"], active: "k")
        let store = KeyStore(keyring: keyring)
        let alice = try store.unwrap(try #require(try await store.activeOrNewKey(scope: "pii", scopeID: "alice", on: connection)))
        let order = try store.unwrap(try #require(try await store.activeOrNewKey(scope: "orders", scopeID: "o1", on: connection)))
        let email = Data(try Envelope.seal(Array("alice@example.com".utf8), using: alice)).base64EncodedString()
        let address = Data(try Envelope.seal(Array(#"{"city":"Lyon"}"#.utf8), using: order)).base64EncodedString()
        let mappings = [
            EncryptedFieldMapping(field: ["customer", "email"], scope: "pii", scopeID: .payload(["customer", "id"]), keyVersion: .payload(["v"])),
            EncryptedFieldMapping(field: ["address"], scope: "orders", scopeID: .aggregateID, keyVersion: .literal("1"), plaintext: .json),
        ]
        let decryptor = PayloadDecryptor(keyStore: store, freshness: .checkedEachCall)
        let events = [
            Self.event(#"{"customer": {"id": "alice", "email": "\#(email)"}, "v": 1, "address": "\#(address)"}"#),
            Self.event(#"{"customer": {"id": "bob"}, "v": 1}"#, position: 2),  // nothing encrypted here
        ]
        let results = try await decryptor.results(events, mappings: mappings, on: connection)
        let first = try Self.object(try results[0].get().event)
        #expect((first["customer"] as? [String: Any])?["email"] as? String == "alice@example.com")
        #expect((first["address"] as? [String: Any])?["city"] as? String == "Lyon")
        #expect(try results[1].get().event.payload == events[1].payload, "an event without mapped values is unchanged")

        try await store.destroyKeys(scope: "pii", scopeID: "alice", on: connection)
        let after = try await decryptor.results([events[0]], mappings: mappings, on: connection)[0].get()
        let object = try Self.object(after.event)
        #expect((object["customer"] as? [String: Any])?["email"] is NSNull)
        #expect(after.nulledFields.map(\.path) == ["customer.email"])
        #expect((object["address"] as? [String: Any])?["city"] as? String == "Lyon")
    }

    @Test("a value that is not base64, a missing version, altered ciphertext: that event fails naming the field, never the value; the others decrypt")
    func failures() async throws {
        let (_, connection) = try await Fixtures.database()
        let (keyring, _) = try Fixtures.keyring(["k"], active: "k")
        let store = KeyStore(keyring: keyring)
        let key = try store.unwrap(try #require(try await store.activeOrNewKey(scope: "pii", scopeID: "alice", on: connection)))
        var sealed = try Envelope.seal(Array("secret-value".utf8), using: key)
        let good = Data(sealed).base64EncodedString()
        sealed[sealed.count - 1] ^= 1
        let altered = Data(sealed).base64EncodedString()
        let mapping = [EncryptedFieldMapping(field: ["email"], scope: "pii", scopeID: .literal("alice"), keyVersion: .payload(["v"]))]
        let events = [
            Self.event(#"{"email": "not base64!", "v": 1}"#, position: 1),
            Self.event(#"{"email": "\#(good)"}"#, position: 2),
            Self.event(#"{"email": "\#(altered)", "v": 1}"#, position: 3),
            Self.event(#"{"email": "\#(good)", "v": "1"}"#, position: 4),
            Self.event(#"{"email": "\#(good)", "v": 3000000000}"#, position: 5),
        ]
        let results = try await PayloadDecryptor(keyStore: store).results(events, mappings: mapping, on: connection)
        let messages = results.map { result -> String in if case .failure(let error) = result { "\(error)" } else { "" } }
        #expect(messages[0].contains("'email' does not hold base64"), "\(messages[0])")
        #expect(messages[1].contains("key version of mapped field 'email' is missing"), "\(messages[1])")
        #expect(messages[2].contains("does not decrypt") && messages[2].contains("alice"), "\(messages[2])")
        #expect(try Self.object(try results[3].get().event)["email"] as? String == "secret-value")
        #expect(messages[4].contains("not an integer from 1 to 2147483647"), "a version beyond the table's INT fails its event: \(messages[4])")
        #expect(!messages.joined().contains("secret-value"))
    }
}
