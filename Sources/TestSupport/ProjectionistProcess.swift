import Foundation

/// The built `projectionist` executable, driven as an operator would drive it.
public enum ProjectionistProcess {
    /// The executable next to the test bundle (`swift build --build-tests` builds both).
    public static var executable: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("projectionist")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/projectionist")
    }

    /// The result of one finished run.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `projectionist` (or another `executable`) with `arguments` to completion;
    /// `environment` adds to (or, with nil values, removes from) this process's environment.
    public static func run(
        _ arguments: [String], environment: [String: String?] = [:], executable: URL = Self.executable
    ) async throws -> Output {
        let process = try self.start(arguments, environment: environment, executable: executable)
        return await process.finish()
    }

    /// Starts `projectionist` (or another `executable`) and returns the running process.
    public static func start(
        _ arguments: [String], environment: [String: String?] = [:], executable: URL = Self.executable
    ) throws -> RunningProcess {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let running = RunningProcess(process: process)
        try process.run()
        return running
    }
}

/// A child process whose output is collected while it runs (so a full pipe never blocks it).
public final class RunningProcess: @unchecked Sendable {
    // Mutable state is only touched under `lock`; Process itself is thread-safe for these calls.
    public let process: Process
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()
    private let outPipe = Pipe()
    private let errPipe = Pipe()

    init(process: Process) {
        self.process = process
        let outPipe = self.outPipe
        let errPipe = self.errPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        outPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.out.append(data) }
        }
        errPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.err.append(data) }
        }
    }

    public var pid: Int32 { self.process.processIdentifier }
    public var stdout: String { self.lock.withLock { String(decoding: self.out, as: UTF8.self) } }
    public var stderr: String { self.lock.withLock { String(decoding: self.err, as: UTF8.self) } }

    /// Sends a signal (e.g. SIGTERM).
    public func signal(_ number: Int32) { kill(self.process.processIdentifier, number) }

    /// Waits for the process to exit and returns what it printed.
    public func finish() async -> ProjectionistProcess.Output {
        while self.process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        // Stop the handlers, then take whatever is still in the pipes.
        self.outPipe.fileHandleForReading.readabilityHandler = nil
        self.errPipe.fileHandleForReading.readabilityHandler = nil
        let restOut = self.outPipe.fileHandleForReading.readDataToEndOfFile()
        let restErr = self.errPipe.fileHandleForReading.readDataToEndOfFile()
        self.lock.withLock {
            self.out.append(restOut)
            self.err.append(restErr)
        }
        return ProjectionistProcess.Output(status: self.process.terminationStatus, stdout: self.stdout, stderr: self.stderr)
    }

    /// Waits until `stderr` or `stdout` contains `text`, up to `timeout`.
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(30)) async -> Bool {
        let found = { self.stderr.contains(text) || self.stdout.contains(text) }
        _ = try? await poll(timeout: timeout) { found() || !self.process.isRunning }
        return found()
    }
}
