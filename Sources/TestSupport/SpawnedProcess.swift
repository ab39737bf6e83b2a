import Foundation
import Glibc

/// A child process started with `posix_spawn`, its signal mask cleared and its signal
/// dispositions reset, so that SIGTERM reaches it.
///
/// `Foundation.Process` on Linux passes on the blocked signals of the calling thread (a Dispatch
/// or cooperative-pool worker blocks nearly all of them, swift-corelibs-foundation issue 4772):
/// a server started that way ignores SIGTERM.
final class SpawnedProcess: @unchecked Sendable {
    // `exitStatus` is guarded by `lock`.
    let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `path` with `arguments`, stdin from /dev/null, stdout and stderr appended to `outputPath`.
    /// - Throws: `POSIXError` from `posix_spawn`.
    init(_ path: String, _ arguments: [String], outputPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EINVAL) }
        self.pid = pid
    }

    /// Whether it still runs (reaps it when it has ended).
    var isRunning: Bool { self.status == nil }

    /// Its exit status once ended (128 + signal when killed; -1 when someone else reaped it).
    var status: Int32? {
        self.lock.withLock {
            if self.exitStatus == nil {
                var raw: Int32 = 0
                let reaped = waitpid(self.pid, &raw, WNOHANG)
                if reaped == self.pid {
                    let signal = raw & 0x7f
                    self.exitStatus = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
                } else if reaped == -1 && errno == ECHILD {
                    self.exitStatus = -1
                }
            }
            return self.exitStatus
        }
    }

    /// SIGTERM, then SIGKILL if it still runs after `timeout`; returns once it has ended.
    func terminate(timeout: Duration = .seconds(5)) {
        guard self.isRunning else { return }
        kill(self.pid, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while self.isRunning {
            if ContinuousClock.now >= deadline {
                kill(self.pid, SIGKILL)
                while self.isRunning { usleep(5_000) }
                return
            }
            usleep(5_000)
        }
    }
}
