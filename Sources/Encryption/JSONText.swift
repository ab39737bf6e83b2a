import Foundation

/// Small helpers over JSON text.
enum JSONText {
    /// The value of a JSON string literal (quotes included in `literal`).
    static func decodeString(_ literal: UnsafeBufferPointer<UInt8>) -> String {
        if !literal.contains(UInt8(ascii: "\\")) {
            return String(decoding: UnsafeBufferPointer(rebasing: literal.dropFirst().dropLast()), as: UTF8.self)
        }
        return (try? JSONDecoder().decode(String.self, from: Data(literal))) ?? "?"
    }

    /// Whether `bytes` contains `$encrypted`: the quick test before any parsing.
    static func containsMarker(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let marker = Self.marker
        guard bytes.count >= marker.count else { return false }
        var index = 0
        let last = bytes.count - marker.count
        while index <= last {
            if bytes[index] == UInt8(ascii: "$") {
                var matched = 1
                while matched < marker.count, bytes[index + matched] == marker[matched] { matched += 1 }
                if matched == marker.count { return true }
            }
            index += 1
        }
        return false
    }

    private static let marker = Array(EncryptedField.marker.utf8)
}
