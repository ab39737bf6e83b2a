#if canImport(CMalloc)
import CMalloc
#endif

/// Keeps the daemon's resident memory small on glibc: fewer malloc arenas (every connection's
/// thread would otherwise get one), and freed memory handed back to the system when idle.
public enum MemoryTrimmer {
    /// Limits malloc to two arenas; call once at start, before threads start.
    public static func limitArenas() {
        #if canImport(CMalloc)
        _ = mallopt(M_ARENA_MAX, 2)
        #endif
    }

    /// Returns free heap pages to the system (after a catch-up, when the runners are idle).
    public static func trim() {
        #if canImport(CMalloc)
        _ = malloc_trim(0)
        #endif
    }
}
