/// What this binary is: the release it was built as and, from a git checkout, the commit.
public enum BuildInfo {
    /// The release, `X.Y.Z`. CHANGELOG.md's newest entry and the Debian package carry the same
    /// (a test checks the first, `scripts/package` asks the binary for the second).
    public static let version = "0.9.0"

    /// The commit it was built from (12 hex digits), or nil when built outside a git checkout.
    public static let commit: String? = gitCommit

    /// What `projectionist --version` prints: `projectionist 0.9.0 (git 1a2b3c4d5e6f)`, without
    /// the parenthesis when the commit is unknown.
    public static var versionLine: String {
        "projectionist \(self.version)" + (self.commit.map { " (git \($0))" } ?? "")
    }
}
