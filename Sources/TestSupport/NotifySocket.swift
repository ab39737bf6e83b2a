import Foundation
import Glibc

/// A `NOTIFY_SOCKET` of our own: a unix datagram socket that collects what a child process
/// sends with `sd_notify`, as systemd would receive it.
public final class NotifySocket: @unchecked Sendable {
    // `received` and `open` are guarded by `lock`; the descriptor is read only by the reader thread.
    public let path: String
    private let descriptor: Int32
    private let lock = NSLock()
    private var received: [String] = []
    private var open = true

    public init() throws {
        self.path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8)).sock").path
        self.descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            let bytes = Array(self.path.utf8)
            buffer.copyBytes(from: bytes.prefix(buffer.count - 1))
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard self.descriptor >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in self.readLoop() }
        thread.start()
    }

    deinit { self.close() }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while self.lock.withLock({ self.open }) {
            let count = recv(self.descriptor, &buffer, buffer.count, 0)
            if count > 0 {
                let message = String(decoding: buffer[0..<count], as: UTF8.self)
                self.lock.withLock { self.received.append(message) }
            }
        }
        Glibc.close(self.descriptor)
        unlink(self.path)
    }

    /// Every datagram received so far, in order.
    public var messages: [String] { self.lock.withLock { self.received } }

    /// Every `KEY=value` line received so far.
    public var lines: [String] { self.messages.flatMap { $0.split(separator: "\n").map(String.init) } }

    public func close() { self.lock.withLock { self.open = false } }
}
