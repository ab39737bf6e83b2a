import Foundation

/// Runs a command line tool (psql, systemd-analyze) to completion, as an operator would.
public enum Shell {
    /// - Returns: the exit status and stdout and stderr together.
    public static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await offThePool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, output)
        }
    }
}

/// Runs `body`, which blocks (waits for a child process, reads a pipe to its end), on a thread of
/// its own: on the cooperative pool (one thread per core, two here) a blocked wait would stall
/// every other test running in parallel, and with them their timing.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result { try body() })
        }.start()
    }
}
