import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Postgres
import Projections
import ServiceLifecycle
import Prometheus
import Synchronization

/// The daemon's HTTP listener (`metrics.listen`), on Hummingbird: `/metrics` (Prometheus text
/// format from swift-prometheus), `/healthz` (the runners' loops are alive), `/readyz`
/// (`Readiness`) and `/status` (`status --json`, through `StatusReader`, on a connection borrowed
/// from the worker's pool).
struct HTTPServer: Sendable {
    let address: ListenAddress
    /// Where the address came from (`metrics.listen` or its environment variable), for messages.
    let source: String
    let registry: PrometheusCollectorRegistry
    let board: StatusBoard
    let started: StartedFlag
    let configuration: ProjectionistConfiguration
    /// The worker's pool: `/status` counts in the connection budget too.
    let pool: ConnectionPool
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

    /// A connection left idle this long is closed (a scraper that never hangs up holds no socket).
    static let idleTimeout: TimeAmount = .seconds(30)

    /// - Parameter bound: called once the address is bound and the listener accepts connections.
    func service(bound: @escaping @Sendable () async -> Void = {}) throws -> any Service {
        let reader = StatusReader(configuration: self.configuration, pool: self.pool)
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
            switch await reader.json() {
            case .success(let json):
                return Self.response(.ok, Array(json.utf8), contentType: "application/json")
            case .failure(let error):
                return Self.response(.serviceUnavailable, Array("{\"error\": \(Self.quoted("\(error)"))}".utf8), contentType: "application/json")
            }
        }
        var logger = self.logger
        logger.logLevel = max(logger.logLevel, .notice)  // no line per request
        let server = try Self.service(router.buildResponder(), address: self.address, logger: logger, bound: bound)
        let address = self.address
        let source = self.source
        let file = self.configuration.file
        return ClosureService {
            do {
                try await server.run()
            } catch let error as IOError {
                throw Self.bindError(address, source: source, file: file, reason: String(cString: strerror(error.errnoCode)))
            } catch let error as SocketAddressError {
                throw Self.bindError(address, source: source, file: file, reason: "\(error)")
            }
        }
    }

    /// The listener could not bind its address (in use, not an address of this host, a privileged
    /// port): a configuration error naming the key, before READY.
    static func bindError(_ address: ListenAddress, source: String, file: String, reason: String) -> ConfigurationError {
        let from = source == "metrics.listen" ? "" : " (from \(source))"
        return ConfigurationError(
            file: file, keyPath: "metrics.listen",
            message: "cannot listen on \(address)\(from): \(reason). Choose a free address: set metrics.listen, or \(ProjectionistConfiguration.listenVariable) for one instance (or leave metrics.listen empty to turn the listener off)")
    }

    /// The HTTP/1 server over `responder`, as Hummingbird's `Application` runs it but without its
    /// `DateCache`: that formats the `Date` header through Foundation's ICU calendar every second,
    /// which alone kept 1.4 MiB of ICU code and data resident. The header comes from `HTTPDate`.
    /// Errors are handled as Hummingbird's loop handles them: a request that does not parse
    /// (`HTTPParserError`) goes back to the channel handler, which answers 400 and closes the
    /// connection; one found while writing the response closes it without a second response.
    static func service(
        _ responder: RouterResponder<BasicRequestContext>, address: ListenAddress, logger: Logger, bound: @escaping @Sendable () async -> Void
    ) throws -> any Service {
        let configuration = ServerConfiguration(address: .hostname(address.host, port: address.port), serverName: "projectionist")
        return try HTTPServerBuilder.http1(configuration: HTTP1Channel.Configuration(idleTimeout: Self.idleTimeout)).buildServer(
            configuration: configuration, eventLoopGroup: Self.eventLoop, logger: logger,
            responder: { request, writer, channel in
            var response: Response
            do {
                response = try await responder.respond(to: request, context: BasicRequestContext(source: .init(channel: channel, logger: logger)))
            } catch let error as HTTPParserError {
                throw error
            } catch let error as HTTPError {
                response = Response(status: error.status)  // e.g. 404 for an unknown path
            } catch {
                response = Response(status: .internalServerError)
            }
            response.headers[.date] = HTTPDate.now()
            response.headers[.server] = "projectionist"
            do {
                try await writer.write(response: response.head, body: response.body)
            } catch is HTTPParserError {
                throw ParseErrorWhileWritingResponse()  // not a parser error: that would write a second response
            }
        }, onServerRunning: { _ in await bound() })
    }

    /// One event loop thread serves the listener: a scrape a few times a minute needs no more,
    /// and NIO's shared group would start one per core (each a stack and a malloc arena's share).
    static let eventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func response(_ status: HTTPResponse.Status, _ bytes: [UInt8], contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func quoted(_ text: String) -> String { JSONOutput.text(text) }

    /// The request turned out malformed while its response was written: the connection closes.
    struct ParseErrorWhileWritingResponse: Error {}
}
