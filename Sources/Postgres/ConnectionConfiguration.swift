import Foundation

/// How to reach the server: a `postgres://` URL or a libpq keyword string, plus an optional
/// password file. An empty connection string lets libpq use `PGHOST`, `PGUSER`, `~/.pgpass`
/// and service files, exactly as `psql` does.
///
/// The value is a secret: `description` never shows it.
public struct ConnectionConfiguration: Sendable, CustomStringConvertible {
    /// A URL or keyword/value string, passed to libpq unchanged.
    public var connectionString: String
    /// A password read from a file (first line, trailing newline removed); overrides the string's.
    public var password: String?
    /// `application_name` unless the string sets one.
    public var applicationName: String

    /// The same, for a connection with a role of its own: `application_name` gets `/role`
    /// appended (`projectionist/reader`), so `pg_stat_activity` tells the daemon's connections
    /// apart. A connection string that sets `application_name` itself wins, as before.
    public func role(_ role: String) -> ConnectionConfiguration {
        var configuration = self
        configuration.applicationName = "\(self.applicationName)/\(role)"
        return configuration
    }
    /// Seconds libpq waits for a connection unless the string sets `connect_timeout`.
    public var connectTimeoutSeconds: Int

    public init(
        connectionString: String = "", password: String? = nil, applicationName: String = "projectionist",
        connectTimeoutSeconds: Int = 10
    ) {
        self.connectionString = connectionString
        self.password = password
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// Reads the password from `path`: the first line, without its newline.
    /// - Throws: `PostgresError` with code `.usage` naming the file when it cannot be read.
    public mutating func readPassword(fromFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw PostgresError(code: .usage, message: "cannot read password file \(path)")
        }
        self.password = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }

    public var description: String { "ConnectionConfiguration(<redacted>)" }

    /// Every secret this configuration holds, to scrub from messages: the password file's,
    /// and the password inside the string (URL or keyword form), raw and percent-decoded.
    var secrets: [String] {
        var found: [String] = []
        if let password, !password.isEmpty { found.append(password) }
        for secret in Self.passwords(in: self.connectionString) where !secret.isEmpty {
            found.append(secret)
            if let decoded = secret.removingPercentEncoding, decoded != secret { found.append(decoded) }
        }
        return found
    }

    /// Passwords in a URL (`scheme://user:password@`, `?password=`) or keyword string (`password=`).
    /// Deliberately forgiving: it must find a password even in a string libpq cannot parse.
    static func passwords(in string: String) -> [String] {
        var found: [String] = []
        if let schemeEnd = string.range(of: "://") {
            let rest = string[schemeEnd.upperBound...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            if let at = authority.lastIndex(of: "@") {
                let userInfo = authority[..<at]
                if let colon = userInfo.firstIndex(of: ":") {
                    found.append(String(userInfo[userInfo.index(after: colon)...]))
                }
            }
            if let query = rest.firstIndex(of: "?") {
                for pair in rest[rest.index(after: query)...].split(separator: "&") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    if parts.count == 2, parts[0] == "password" { found.append(String(parts[1])) }
                }
            }
        } else {
            var scanner = Substring(string)
            while let range = scanner.range(of: "password") {
                var after = scanner[range.upperBound...].drop { $0 == " " }
                guard after.first == "=" else {
                    scanner = scanner[range.upperBound...]
                    continue
                }
                after = after.dropFirst().drop { $0 == " " }
                if after.first == "'" {
                    var value = ""
                    var index = after.index(after: after.startIndex)
                    while index < after.endIndex, after[index] != "'" {
                        if after[index] == "\\", after.index(after: index) < after.endIndex {
                            index = after.index(after: index)
                        }
                        value.append(after[index])
                        index = after.index(after: index)
                    }
                    found.append(value)
                } else {
                    found.append(String(after.prefix { $0 != " " }))
                }
                scanner = after
            }
        }
        return found
    }

    /// Removes every secret from a message before it leaves the module.
    func scrub(_ message: String) -> String {
        var message = message
        for secret in self.secrets.sorted(by: { $0.count > $1.count }) {
            message = message.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return message
    }
}
