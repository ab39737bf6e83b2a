import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOPosix
import Postgres
import Projections
import ServiceLifecycle
import Prometheus
import Synchronization

/// The daemon's HTTP listener (`metrics.listen`), on Hummingbird: `/metrics` (Prometheus text
/// format from swift-prometheus), `/healthz` (the runners' loops are alive), `/readyz`
/// (`Readiness`) and `/status` (`status --json`).
struct HTTPServer: Sendable {
    let address: ListenAddress
    let registry: PrometheusCollectorRegistry
    let board: StatusBoard
    let started: StartedFlag
    let configuration: ProjectionistConfiguration
    /// A runner whose loop has not gone round for this long (and is not waiting on the server)
    /// makes `/healthz` fail.
    let liveness: Duration
    let logger: Logger

    /// Set once the worker has started (the moment `READY=1` is sent).
    final class StartedFlag: Sendable {
        private let value = Mutex(false)
        func set() { self.value.withLock { $0 = true } }
        var isSet: Bool { self.value.withLock { $0 } }
    }

    func service() throws -> any Service {
        let router = Router()
        let process = ProcessMetrics()
        router.get("/metrics") { _, _ -> Response in
            process.refresh()
            var buffer: [UInt8] = []
            self.registry.emit(into: &buffer)
            return Self.response(.ok, buffer, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/healthz") { _, _ -> Response in
            let alive = self.board.allResponsive(within: self.liveness)
            return Self.response(alive ? .ok : .serviceUnavailable, Array((alive ? "ok\n" : "a runner's loop stopped going round\n").utf8))
        }
        router.get("/readyz") { _, _ -> Response in
            let readiness = Readiness.judge(started: self.started.isSet, statuses: self.board.all, health: self.configuration.health)
            return Self.response(readiness.ready ? .ok : .serviceUnavailable, Array(readiness.json.utf8), contentType: "application/json")
        }
        router.get("/status") { _, _ -> Response in
            do {
                let connection = try await PostgresConnection.connect(try self.configuration.connectionConfiguration())
                defer { Task { await connection.close() } }
                let report = try await StatusReport.read(self.configuration, on: connection)
                return Self.response(.ok, Array(report.json.utf8), contentType: "application/json")
            } catch {
                return Self.response(.serviceUnavailable, Array("{\"error\": \(Self.quoted("\(error)"))}".utf8), contentType: "application/json")
            }
        }
        var logger = self.logger
        logger.logLevel = max(logger.logLevel, .notice)  // no line per request
        return try Self.service(router.buildResponder(), address: self.address, logger: logger)
    }

    /// The HTTP/1 server over `responder`, as Hummingbird's `Application` runs it but without its
    /// `DateCache`: that formats the `Date` header through Foundation's ICU calendar every second,
    /// which alone kept 1.4 MiB of ICU code and data resident. The header comes from `HTTPDate`.
    static func service(_ responder: RouterResponder<BasicRequestContext>, address: ListenAddress, logger: Logger) throws -> any Service {
        let configuration = ServerConfiguration(address: .hostname(address.host, port: address.port), serverName: "projectionist")
        return try HTTPServerBuilder.http1().buildServer(configuration: configuration, eventLoopGroup: Self.eventLoop, logger: logger) {
            request, writer, channel in
            var response: Response
            do {
                response = try await responder.respond(to: request, context: BasicRequestContext(source: .init(channel: channel, logger: logger)))
            } catch let error as HTTPError {
                response = Response(status: error.status)  // e.g. 404 for an unknown path
            } catch {
                response = Response(status: .internalServerError)
            }
            response.headers[.date] = HTTPDate.now()
            response.headers[.server] = "projectionist"
            try await writer.write(response: response.head, body: response.body)
        }
    }

    /// One event loop thread serves the listener: a scrape a few times a minute needs no more,
    /// and NIO's shared group would start one per core (each a stack and a malloc arena's share).
    static let eventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func response(_ status: HTTPResponse.Status, _ bytes: [UInt8], contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func quoted(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [])
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    /// Fails early, naming the key, when the address cannot be bound (in use, not an address of
    /// this host, a privileged port): a clear configuration error rather than a failure later.
    static func checkAvailable(_ address: ListenAddress, file: String) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &result) == 0, let info = result else {
            throw ConfigurationError(file: file, keyPath: "metrics.listen", message: "cannot resolve '\(address.host)'")
        }
        defer { freeaddrinfo(result) }
        let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard descriptor >= 0 else { throw ConfigurationError(file: file, keyPath: "metrics.listen", message: "cannot open a socket") }
        defer { close(descriptor) }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            throw ConfigurationError(
                file: file, keyPath: "metrics.listen",
                message: "cannot listen on \(address): \(reason). Choose a free address (or leave metrics.listen empty to turn the listener off)")
        }
    }
}
