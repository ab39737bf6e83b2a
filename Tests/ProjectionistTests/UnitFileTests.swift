import Foundation
import TestSupport
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite struct UnitFileTests {
    /// The shipped unit with ExecStart pointing at the binary we built.
    func unitCopy() throws -> String {
        let unit = try String(contentsOf: repositoryRoot.appendingPathComponent("systemd/projectionist.service"), encoding: .utf8)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unit-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("projectionist.service").path
        try unit.replacingOccurrences(of: "/usr/bin/projectionist", with: ProjectionistProcess.executable.path)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("the unit passes systemd-analyze verify and has the contract's settings")
    func verify() async throws {
        let path = try self.unitCopy()
        let result = try await Shell.run(["systemd-analyze", "verify", path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(result.output)")
        let unit = try String(contentsOfFile: path, encoding: .utf8)
        for setting in ["Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=78", "DynamicUser=yes"] {
            #expect(unit.contains(setting), "missing \(setting)")
        }
    }

    @Test("systemd-analyze security scores the unit's exposure at 1.5 or lower (the HTTP listener needs nothing more)")
    func security() async throws {
        let path = try self.unitCopy()
        let result = try await Shell.run(["systemd-analyze", "security", "--offline=true", "--no-pager", path])
        let line = try #require(result.output.split(separator: "\n").first { $0.contains("Overall exposure level") })
        // `→ Overall exposure level for projectionist.service: 1.1 OK 🙂` (`:-)` outside a UTF-8 locale): the first number.
        let score = try #require(line.split(separator: " ").lazy.compactMap { Double($0) }.first, "\(line)")
        print("systemd-analyze security: \(line)")
        #expect(score <= 1.5)
    }

    @Test("the example configuration parses and compiles")
    func exampleConfiguration() async throws {
        let output = try await ProjectionistProcess.run(
            ["reset", "does_not_exist", "--config", repositoryRoot.appendingPathComponent("systemd/projectionist.yaml").path])
        // Parsing and compiling succeed; only the name is unknown (64), listing the configured one.
        #expect(output.status == 64, "\(output.stderr)")
        #expect(output.stderr.contains("order_overview_v1"))
    }
}
