import Dispatch
import Glibc

/// Waits for SIGTERM or SIGINT without blocking a thread: the signals are ignored for the
/// default action and delivered through dispatch sources.
enum SignalWaiter {
    /// Returns the first of `signals` to arrive.
    static func wait(for signals: [Int32] = [SIGTERM, SIGINT]) async -> Int32 {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        for await number in stream { return number }
        return 0
    }
}
