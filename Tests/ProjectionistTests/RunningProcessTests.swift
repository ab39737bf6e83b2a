import Foundation
import TestSupport
import Testing

/// The test harness's child processes: a hang ends in a killed child and a failing status, not
/// in the suite's time limit.
@Suite(.timeLimit(.minutes(1)))
struct RunningProcessTests {
    @Test("finish(deadline:) kills a child still running at the deadline, and says so in its stderr")
    func deadline() async throws {
        let child = try ProjectionistProcess.start(["30"], executable: URL(fileURLWithPath: "/bin/sleep"))
        let clock = ContinuousClock()
        let start = clock.now
        let output = await child.finish(deadline: .milliseconds(300))
        #expect(output.status == SIGKILL, "terminated by the signal: \(output.status)")
        #expect(output.stderr.contains("killed by the test"), "\(output.stderr)")
        #expect(clock.now - start < .seconds(20), "did not wait for sleep's 30 s")
        #expect(!child.process.isRunning)
    }

    @Test("finish() of a child that exits by itself returns its status and output untouched")
    func exitsByItself() async throws {
        let child = try ProjectionistProcess.start(["-c", "echo out; echo err >&2; exit 3"], executable: URL(fileURLWithPath: "/bin/sh"))
        let output = await child.finish()
        #expect(output.status == 3)
        #expect(output.stdout == "out\n")
        #expect(output.stderr == "err\n")
    }
}
