import Foundation

/// The figures Prometheus's standard `process_*` metrics report, read from Linux's
/// `/proc/self/stat` as client libraries of other languages read them.
struct ProcessStat: Equatable, Sendable {
    /// User plus system CPU time.
    var cpuSeconds: Double
    /// When the process started, in seconds since the Unix epoch.
    var startTimeSeconds: Double
    var virtualMemoryBytes: Int
    var residentMemoryBytes: Int

    /// What the kernel's clock ticks and pages mean on this machine, and when it booted.
    struct Machine: Sendable {
        var ticksPerSecond: Double
        var pageSize: Int
        var bootTimeSeconds: Double
    }

    /// Parses the one line of `/proc/[pid]/stat`. The command name (field 2) is in parentheses
    /// and may hold spaces and parentheses itself, so the fields are counted after the last `)`.
    static func parse(_ line: String, machine: Machine) -> ProcessStat? {
        guard let close = line.lastIndex(of: ")") else { return nil }
        // After the name: field 3 (state) is index 0, so field n is index n - 3.
        let fields = line[line.index(after: close)...].split(separator: " ")
        func field(_ n: Int) -> Double? { fields.count > n - 3 ? Double(fields[n - 3]) : nil }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24) else {
            return nil
        }
        return ProcessStat(
            cpuSeconds: (utime + stime) / machine.ticksPerSecond,
            startTimeSeconds: machine.bootTimeSeconds + start / machine.ticksPerSecond,
            virtualMemoryBytes: Int(vsize), residentMemoryBytes: Int(rss) * machine.pageSize)
    }

    /// When the machine booted, in seconds since the epoch: the real-time clock less the boot-time
    /// clock (what `starttime` counts from). Not `/proc/stat`'s `btime`: the unit's
    /// `ProcSubset=pid` hides that file from the daemon.
    static func bootTime() -> Double {
        func seconds(_ clock: clockid_t) -> Double {
            var time = timespec()
            clock_gettime(clock, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        return seconds(CLOCK_REALTIME) - seconds(CLOCK_BOOTTIME)
    }

    /// This process now, or nil where there is no `/proc` (not Linux).
    static func current() -> ProcessStat? {
        guard let line = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        return self.parse(line, machine: self.machine)
    }

    /// Read once: none of it changes while the process runs.
    static let machine = Machine(
        ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))), pageSize: Int(sysconf(Int32(_SC_PAGESIZE))),
        bootTimeSeconds: bootTime())

    /// Open file descriptors: the entries of `/proc/self/fd`.
    static func openFileDescriptors() -> Int? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map(\.count)
    }

    /// The soft limit on open file descriptors (`RLIMIT_NOFILE`).
    static func maxFileDescriptors() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return limit.rlim_cur > rlim_t(Int.max) ? nil : Int(limit.rlim_cur)  // RLIM_INFINITY: no limit
    }
}
