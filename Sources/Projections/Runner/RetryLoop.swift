import Logging

/// The loop of every background duty that talks to the server (the periodic duties, the
/// notification listener): `attempt` again and again until the task is cancelled. A failed
/// attempt is logged and waits a jittered backoff; the backoff starts over only once an attempt
/// reports progress, so a duty failing the same way every time (a missing column, a permission)
/// keeps backing off instead of retrying ten times a second.
struct RetryLoop: Sendable {
    /// Names the duty in the log line.
    let role: String
    let backoff: Backoff
    let logger: Logger
    /// How loudly a failed attempt is logged.
    var level: Logger.Level = .warning

    /// - Parameter attempt: one round; it calls `progressed` once it got somewhere (connected,
    ///   or a tick succeeded), and returns to go round again at once.
    func run(_ attempt: (_ progressed: () -> Void) async throws -> Void) async {
        var backoff = self.backoff
        while !Task.isCancelled {
            do {
                try await attempt { backoff.reset() }
            } catch {
                if Task.isCancelled { break }
                self.logger.log(level: self.level, "\(self.role) failed; trying again.", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}
