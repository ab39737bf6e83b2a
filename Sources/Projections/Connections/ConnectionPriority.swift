/// Which queue a borrower of the pool waits in: control work (the lease coordinator, the head
/// probe, `/status`, start-up checks, LISTEN) is served before batch work (every runner action,
/// the lag sampler, the swap monitor); within a priority, first come, first served.
public enum ConnectionPriority: Sendable, Hashable {
    case control
    case batch
}
