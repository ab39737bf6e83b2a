import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 GET over a TCP socket to 127.0.0.1, for tests that scrape the daemon's
/// listener (no dependency on curl or URLSession being present on the machine).
public enum HTTPGet {
    public struct Response: Sendable {
        public var status: Int
        public var body: String
        /// The header lines as received (names in their case), without the status line.
        public var headers: [String] = []
    }

    /// A port nothing listens on right now (bound to port 0 and released).
    public static func freePort() -> Int {
        let (descriptor, port) = self.occupyPort(listening: false)
        close(descriptor)
        return port
    }

    /// A loopback port this process holds (listening, unless told otherwise) until it closes
    /// the returned descriptor: an address another listener cannot have.
    public static func occupyPort(listening: Bool = true) -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if listening { listen(descriptor, 1) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// - Parameter timeout: how long a read may wait for the server (none: as long as it takes).
    /// - Throws: when nothing answers on the port (or nothing arrives within `timeout`).
    public static func get(port: Int, _ path: String, timeout: Duration? = nil) throws -> Response {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        if let timeout {
            var value = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw HTTPError(message: "nothing listens on 127.0.0.1:\(port)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count <= 0 { break }
            data.append(contentsOf: chunk[0..<count])
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n"), let statusLine = text.split(separator: "\r\n").first else {
            throw HTTPError(message: "not an HTTP response: \(text.prefix(200))")
        }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw HTTPError(message: "bad status line: \(statusLine)") }
        var body = String(text[headerEnd.upperBound...])
        if text[..<headerEnd.lowerBound].lowercased().contains("transfer-encoding: chunked") { body = Self.unchunk(body) }
        let headers = text[..<headerEnd.lowerBound].split(separator: "\r\n").dropFirst().map(String.init)
        return Response(status: status, body: body, headers: headers)
    }

    static func unchunk(_ text: String) -> String {
        var rest = Substring(text)
        var body = ""
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let end = rest.utf8.index(start, offsetBy: size)
            body += rest[start..<end]
            rest = rest[end...].dropFirst(2)
        }
        return body
    }

    public struct HTTPError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { self.message }
    }
}
