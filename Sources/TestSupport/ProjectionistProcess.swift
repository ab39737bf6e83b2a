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
        running.startReading()
        return running
    }
}

/// A child process whose output is collected while it runs (so a full pipe never blocks it).
///
/// Each pipe is drained by a thread of its own with blocking reads until end of file, not by a
/// `readabilityHandler`: a handler's dispatch source outlives a process that is killed and never
/// finished, and its pipe closing under the source crashed libdispatch's event loop.
public final class RunningProcess: @unchecked Sendable {
    // Mutable state is only touched under `lock`; Process itself is thread-safe for these calls.
    public let process: Process
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()
    private var pipesOpen = 2
    private let outPipe = Pipe()
    private let errPipe = Pipe()

    init(process: Process) {
        self.process = process
        process.standardOutput = self.outPipe
        process.standardError = self.errPipe
        process.standardInput = FileHandle.nullDevice
    }

    /// Starts draining both pipes; call once the process runs.
    func startReading() {
        self.drain(self.outPipe.fileHandleForReading) { $0.out.append($1) }
        self.drain(self.errPipe.fileHandleForReading) { $0.err.append($1) }
    }

    private func drain(_ handle: FileHandle, into append: @escaping @Sendable (RunningProcess, Data) -> Void) {
        Thread {
            while true {
                let data = handle.availableData  // blocks; empty at end of file (the process exited)
                if data.isEmpty { break }
                self.lock.withLock { append(self, data) }
            }
            self.lock.withLock { self.pipesOpen -= 1 }
        }.start()
    }

    public var pid: Int32 { self.process.processIdentifier }
    public var stdout: String { self.lock.withLock { String(decoding: self.out, as: UTF8.self) } }
    public var stderr: String { self.lock.withLock { String(decoding: self.err, as: UTF8.self) } }

    /// Sends a signal (e.g. SIGTERM).
    public func signal(_ number: Int32) { kill(self.process.processIdentifier, number) }

    /// Waits for the process to exit and its output to be read to the end, and returns it.
    ///
    /// A process still running after `deadline` is killed (status 9: the signal, as Foundation reports it) and
    /// says so on stderr, so that a hang fails its test with the output, not the suite's time limit.
    public func finish(deadline: Duration = .seconds(120)) async -> ProjectionistProcess.Output {
        let start = ContinuousClock.now
        var killed = false
        while self.process.isRunning || self.lock.withLock({ self.pipesOpen > 0 }) {
            if !killed, self.process.isRunning, ContinuousClock.now - start > deadline {
                let arguments = ([self.process.executableURL?.lastPathComponent ?? "?"] + (self.process.arguments ?? [])).joined(separator: " ")
                FileHandle.standardError.write(Data("pid \(self.pid) (\(arguments)) still running after \(deadline): killed\n".utf8))
                self.signal(SIGKILL)
                killed = true
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        var stderr = self.stderr
        if killed { stderr += "\n[killed by the test: still running after \(deadline)]\n" }
        return ProjectionistProcess.Output(status: self.process.terminationStatus, stdout: self.stdout, stderr: stderr)
    }

    /// Waits until `stderr` or `stdout` contains `text`, up to `timeout`.
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(30)) async -> Bool {
        let found = { self.stderr.contains(text) || self.stdout.contains(text) }
        _ = try? await poll(timeout: timeout) { found() || !self.process.isRunning }
        return found()
    }
}
