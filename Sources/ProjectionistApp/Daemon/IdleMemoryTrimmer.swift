import Projections
import ServiceLifecycle

/// After a catch-up the batches' memory is free but still resident: this service gives it back
/// to the system each time every runner turns idle.
struct IdleMemoryTrimmer: Service {
    let board: StatusBoard

    func run() async {
        await cancelWhenGracefulShutdown {
            var wasIdle = false
            while !Task.isCancelled {
                let idle = self.board.all.allSatisfy { $0.state == .idle || $0.state == .standby }
                if idle && !wasIdle { MemoryTrimmer.trim() }
                wasIdle = idle
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
