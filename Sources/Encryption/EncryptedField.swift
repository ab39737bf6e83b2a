import Foundation

/// A self-describing encrypted JSON value, as it appears inside a payload:
/// `{"$encrypted": {"scope": "user-pii", "scope_id": "user-123", "key_version": 1, "ciphertext": "<base64>"}}`,
/// where the ciphertext is `[nonce][ciphertext][tag]` (AES-256-GCM under the subject's data
/// key) of the UTF-8 JSON text of the original value. Encodable, so it can be a property of
/// an event's payload type.
public struct EncryptedField: Sendable, Hashable, Codable {
    /// The object's only key.
    public static let marker = "$encrypted"

    /// The subject and key version whose data key encrypted it.
    public var key: KeyReference
    /// `[nonce][ciphertext][tag]`.
    public var ciphertext: [UInt8]

    public init(key: KeyReference, ciphertext: [UInt8]) {
        self.key = key
        self.ciphertext = ciphertext
    }

    /// The JSON text, members in the documented order.
    public var jsonBytes: [UInt8] {
        let body =
            "{\"scope\":\(Self.quote(self.key.scope)),\"scope_id\":\(Self.quote(self.key.scopeID)),"
            + "\"key_version\":\(self.key.version),\"ciphertext\":\"\(Data(self.ciphertext).base64EncodedString())\"}"
        return Array("{\"\(Self.marker)\":\(body)}".utf8)
    }

    struct Body: Codable {
        var scope: String
        var scope_id: String
        var key_version: Int
        var ciphertext: String
    }

    private struct Outer: Codable {
        var body: Body
        enum CodingKeys: String, CodingKey { case body = "$encrypted" }
    }

    public init(from decoder: any Decoder) throws {
        let outer = try Outer(from: decoder)
        guard let ciphertext = Data(base64Encoded: outer.body.ciphertext) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "ciphertext is not standard base64"))
        }
        self.init(
            key: KeyReference(scope: outer.body.scope, scopeID: outer.body.scope_id, version: outer.body.key_version),
            ciphertext: Array(ciphertext))
    }

    public func encode(to encoder: any Encoder) throws {
        try Outer(
            body: Body(
                scope: self.key.scope, scope_id: self.key.scopeID, key_version: self.key.version,
                ciphertext: Data(self.ciphertext).base64EncodedString())
        ).encode(to: encoder)
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
