import Foundation
import Postgres
import TestSupport
import Testing

/// `isAliveWhileIdle` in the window a real server leaves open only for microseconds: a backend
/// ended by `pg_terminate_backend` sends its FATAL message, leaves `pg_stat_activity`, and only
/// then closes its socket. A pool asking in between must not lend the connection. The window
/// cannot be held open on a real server, so a speaker of the protocol's first messages plays one
/// here: it accepts the connection, sends the FATAL message and keeps the socket open.
@Suite(.timeLimit(.minutes(1)))
struct IdleTerminationTests {
    @Test("a FATAL message on an idle connection whose socket is still open: not alive")
    func fatalBeforeEndOfFile() async throws {
        let server = try OneSessionServer()
        let connection = try await PostgresConnection.connect(
            ConnectionConfiguration(connectionString: "host=\(server.directory) port=\(OneSessionServer.port) dbname=d user=u"))
        #expect(await connection.isAliveWhileIdle())
        server.send(OneSessionServer.fatal("terminating connection due to administrator command", sqlState: "57P01"))
        try await eventually("the FATAL message arrived and the connection is known dead") { await !connection.isAliveWhileIdle() }
        #expect(server.isOpen)  // the socket was still open: end of file did not decide it
        await connection.close()
        server.stop()
    }
}

/// A unix-socket listener that serves one client: authentication succeeds at once, and what
/// `send` gets is written to the client. The socket stays open until `stop`.
final class OneSessionServer: @unchecked Sendable {
    static let port = 5999
    let directory: String
    private let listener: Int32
    private var client: Int32 = -1
    private let ready = DispatchSemaphore(value: 0)

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("one-session-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        self.listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = "\(self.directory)/.s.PGSQL.\(Self.port)"
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            bytes.copyBytes(from: Array(path.utf8) + [0])
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(self.listener, 1) == 0 else { throw POSIXError(.EADDRINUSE) }
        Thread { self.serve() }.start()
    }

    /// Reads the startup message and answers as a server that trusts everyone.
    private func serve() {
        let client = accept(self.listener, nil, nil)
        guard client >= 0 else { return }
        self.client = client
        var length = [UInt8](repeating: 0, count: 4)
        _ = recv(client, &length, 4, Int32(MSG_WAITALL))
        let size = Int(length[0]) << 24 | Int(length[1]) << 16 | Int(length[2]) << 8 | Int(length[3])
        var startup = [UInt8](repeating: 0, count: max(size - 4, 0))
        _ = recv(client, &startup, startup.count, Int32(MSG_WAITALL))
        var reply = Self.message("R", Self.int32(0))  // AuthenticationOk
        reply += Self.message("S", Array("server_version\u{0}15.0\u{0}".utf8))
        reply += Self.message("K", Self.int32(4242) + Self.int32(7))  // BackendKeyData
        reply += Self.message("Z", Array("I".utf8))  // ReadyForQuery, idle
        self.write(reply)
        self.ready.signal()
    }

    func send(_ bytes: [UInt8]) {
        self.ready.wait()
        self.ready.signal()
        self.write(bytes)
    }

    /// Whether the client's socket is still open on this end (nothing closed it).
    var isOpen: Bool { self.client >= 0 && fcntl(self.client, F_GETFD) != -1 }

    func stop() {
        if self.client >= 0 { close(self.client) }
        close(self.listener)
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(self.client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// An ErrorResponse of severity FATAL.
    static func fatal(_ text: String, sqlState: String) -> [UInt8] {
        let fields = "SFATAL\u{0}VFATAL\u{0}C\(sqlState)\u{0}M\(text)\u{0}\u{0}"
        return message("E", Array(fields.utf8))
    }

    static func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        [type.asciiValue!] + int32(Int32(body.count + 4)) + body
    }

    static func int32(_ value: Int32) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}
