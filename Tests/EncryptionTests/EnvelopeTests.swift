import Crypto
import Encryption
import Foundation
import Testing

@Suite struct EnvelopeTests {
    @Test("seal and open: [12-byte nonce][ciphertext][16-byte tag], a fresh nonce each time")
    func roundTrip() throws {
        let key = SymmetricKey(size: .bits256)
        let plaintext = Array("\"alice@example.com\"".utf8)
        let sealed = try Envelope.seal(plaintext, using: key)
        #expect(sealed.count == 12 + plaintext.count + 16)
        #expect(try Envelope.open(sealed, using: key) == plaintext)
        let again = try Envelope.seal(plaintext, using: key)
        #expect(again[..<12] != sealed[..<12] && again != sealed)
        #expect(try Envelope.open(try Envelope.seal([], using: key), using: key) == [])
    }

    @Test("any altered byte, a wrong key, or a short input fails")
    func tampering() throws {
        let key = SymmetricKey(size: .bits256)
        let sealed = try Envelope.seal(Array("secret".utf8), using: key)
        for index in [0, 11, 12, sealed.count - 17, sealed.count - 1] {
            var altered = sealed
            altered[index] ^= 0x01
            #expect(throws: (any Error).self) { try Envelope.open(altered, using: key) }
        }
        #expect(throws: (any Error).self) { try Envelope.open(sealed, using: SymmetricKey(size: .bits256)) }
        #expect(throws: (any Error).self) { try Envelope.open(Array(sealed[..<27]), using: key) }
    }

    @Test("a data key wrapped under a system key unwraps to the same 32 bytes")
    func wrapping() throws {
        let systemKey = SymmetricKey(size: .bits256)
        let dataKey = Envelope.generateDataKey()
        let wrapped = try Envelope.wrap(dataKey, under: systemKey)
        #expect(wrapped.count == 12 + 32 + 16)
        #expect(Fixtures.base64(try Envelope.unwrap(wrapped, under: systemKey)) == Fixtures.base64(dataKey))
        #expect(throws: (any Error).self) { try Envelope.unwrap(wrapped, under: SymmetricKey(size: .bits256)) }
        // Something that authenticates but is not 32 bytes is not a data key.
        let short = try Envelope.seal([UInt8](repeating: 1, count: 16), using: systemKey)
        #expect(throws: (any Error).self) { try Envelope.unwrap(short, under: systemKey) }
    }

    @Test("Python's cryptography AESGCM (no associated data) opens what Swift seals, and Swift opens what it seals")
    func pythonInterop() async throws {
        let key = SymmetricKey(size: .bits256)
        let plaintext = Array("{\"street\":\"Rue de l'Église 5\",\"zip\":\"1000\"}".utf8)
        let sealed = try Envelope.seal(plaintext, using: key)
        let opened = try await Fixtures.python("open", Fixtures.base64(key), Data(sealed).base64EncodedString())
        #expect(Data(base64Encoded: opened).map(Array.init) == plaintext)

        let pythonSealed = try await Fixtures.python("seal", Fixtures.base64(key), Data(plaintext).base64EncodedString())
        #expect(try Envelope.open(Data(base64Encoded: pythonSealed)!, using: key) == plaintext)

        // A data key wrapped by Swift unwraps in Python, and one wrapped by Python unwraps in Swift.
        let systemKey = SymmetricKey(size: .bits256)
        let dataKey = Envelope.generateDataKey()
        let wrapped = try Envelope.wrap(dataKey, under: systemKey)
        #expect(try await Fixtures.python("open", Fixtures.base64(systemKey), Data(wrapped).base64EncodedString()) == Fixtures.base64(dataKey))
        let pythonKey = try await Fixtures.python("newkey")
        let pythonWrapped = try await Fixtures.python("seal", Fixtures.base64(systemKey), pythonKey)
        #expect(Fixtures.base64(try Envelope.unwrap(Data(base64Encoded: pythonWrapped)!, under: systemKey)) == pythonKey)
    }
}

@Suite struct HMACHasherTests {
    @Test("lowercase hex HMAC-SHA256, pinned against Python's hmac module")
    func pinned() {
        let hasher = HMACHasher(key: Array("projectionist-test-hmac-key".utf8))
        #expect(hasher.hash("alice@example.com") == "094881932dccb824dce04edd92662b2bc0051103555abaeb529d9f6ef782c7fc")
        #expect(hasher.hash("") == "f845c175ffcc4d39dc04f51aa4db08f03a1d9124320019233d229b7cb49a9b40")
        let binaryKey = HMACHasher(key: SymmetricKey(data: Array(0..<32) as [UInt8]))
        #expect(binaryKey.hash("Zoë Ünïcode ✓") == "115a5b3dccbe1a17b686efedf8628d4b8e02b95ea2e33f3f06b03ae4c0072288")
    }

    @Test("matches Python for random keys and inputs; deterministic; never shows its key")
    func matchesPython() async throws {
        let keyBytes = Fixtures.randomBase64()
        let hasher = HMACHasher(key: Data(base64Encoded: keyBytes)!)
        for input in ["user-123", "bob@example.org", "😀 multi-byte", String(repeating: "x", count: 200)] {
            let hash = hasher.hash(input)
            #expect(hash == (try await Fixtures.python("hmac", keyBytes, input)))
            #expect(hash.count == 64 && hash == hash.lowercased() && hash == hasher.hash(input))
        }
        #expect(!"\(hasher)".contains(keyBytes))
    }
}
