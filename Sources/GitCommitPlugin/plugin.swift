import Foundation
import PackagePlugin

/// Writes `GitCommit.swift` (`let gitCommit: String?`) for the target it is applied to: the
/// commit of the package's git checkout, or nil outside one. It runs again when the checkout's
/// HEAD, index or branch changes (a commit, a checkout, a reset), and rewrites the file only when the
/// commit differs, so an unchanged commit recompiles nothing.
@main
struct GitCommitPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let package = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appending(path: "GitCommit.swift")
        let git = package.appending(path: ".git")
        // What a commit, checkout or reset rewrites: HEAD, the index, the branch's ref.
        var names = ["HEAD", "index", "packed-refs"]
        if let head = try? String(contentsOf: git.appending(path: "HEAD"), encoding: .utf8), head.hasPrefix("ref: ") {
            names.append(String(head.dropFirst(5)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let inputs = names.map { git.appending(path: $0) }.filter { FileManager.default.fileExists(atPath: $0.path) }
        let script = #"""
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null) && value="\"$commit\"" || value=nil
            text="// Written at build time by GitCommitPlugin.
            let gitCommit: String? = $value"
            [ "$(cat "$2" 2>/dev/null)" = "$text" ] || printf '%s\n' "$text" > "$2"
            """#
        return [
            .buildCommand(
                displayName: "Recording the git commit", executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", package.path, output.path], inputFiles: inputs, outputFiles: [output])
        ]
    }
}
