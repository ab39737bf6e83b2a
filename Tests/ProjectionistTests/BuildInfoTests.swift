import BuildInfo
import Foundation
@testable import ProjectionistApp
import TestSupport
import Testing

/// The release and the commit: one constant, the changelog, `--version` and the build's commit agree.
@Suite struct BuildInfoTests {
    @Test("--version prints `projectionist X.Y.Z (git COMMIT)`, the commit being the checkout's HEAD")
    func versionFlag() async throws {
        let output = try await ProjectionistProcess.run(["--version"])
        #expect(output.status == 0)
        #expect(output.stdout == BuildInfo.versionLine + "\n")
        #expect(BuildInfo.version.range(of: #"^\d+\.\d+\.\d+$"#, options: .regularExpression) != nil)
        let head = try await Shell.run(["git", "-C", repositoryRoot.path, "rev-parse", "--short=12", "HEAD"])
        // Built from this checkout: the commit is HEAD's (the test binary and the daemon are built together).
        #expect(head.status == 0, "the tests run from a git checkout: \(head.output)")
        #expect(BuildInfo.commit == head.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(output.stdout == "projectionist \(BuildInfo.version) (git \(BuildInfo.commit ?? ""))\n")
        let subcommand = try await ProjectionistProcess.run(["run", "--version"])  // every command has it, and runs nothing
        #expect(subcommand.status == 0 && subcommand.stdout == output.stdout, "\(subcommand.stdout)\(subcommand.stderr)")
    }

    @Test("CHANGELOG.md's newest entry is this release")
    func changelog() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("CHANGELOG.md"), encoding: .utf8)
        let newest = text.split(separator: "\n").first { $0.hasPrefix("## ") }
        #expect(newest?.hasPrefix("## \(BuildInfo.version) ") == true, "\(newest ?? "no entry")")
    }
}

@Suite struct ProcessStatTests {
    let machine = ProcessStat.Machine(ticksPerSecond: 100, pageSize: 4096, bootTimeSeconds: 1_700_000_000)

    @Test("fields are counted after the command name's last parenthesis, which may hold spaces and parentheses")
    func parse() throws {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
        // priority nice threads itrealvalue starttime vsize rss ...
        let line = "4242 (odd) name (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 6 0 12300 734003200 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
        let stat = try #require(ProcessStat.parse(line, machine: self.machine))
        #expect(stat == ProcessStat(cpuSeconds: 3, startTimeSeconds: 1_700_000_123, virtualMemoryBytes: 734_003_200, residentMemoryBytes: 2560 * 4096))
        #expect(ProcessStat.parse("4242 (cut) S 1 2 3", machine: self.machine) == nil)
        #expect(ProcessStat.parse("no name", machine: self.machine) == nil)
    }

    @Test("the boot time agrees with /proc/stat's btime; this process's own figures are plausible")
    func current() throws {
        let procStat = try String(contentsOfFile: "/proc/stat", encoding: .utf8)
        let btime = try #require(procStat.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6)) })
        #expect(abs(ProcessStat.bootTime() - btime) < 2, "clocks \(ProcessStat.bootTime()), btime \(btime)")
        let stat = try #require(ProcessStat.current())
        #expect(stat.residentMemoryBytes > 1_000_000 && stat.virtualMemoryBytes >= stat.residentMemoryBytes)
        #expect(abs(stat.startTimeSeconds - Date().timeIntervalSince1970) < 86_400)
        let open = try #require(ProcessStat.openFileDescriptors())
        #expect(open >= 3 && open <= (ProcessStat.maxFileDescriptors() ?? Int.max))
    }

    @Test("a counter fed by increments: the growth since the last report, never negative")
    func reportedTotal() {
        let total = ReportedTotal()
        #expect(total.advance(to: 1.5) == 1.5)
        #expect(total.advance(to: 2.0) == 0.5)
        #expect(total.advance(to: 1.0) == 0)
        #expect(total.advance(to: 2.5) == 0.5)
    }
}
