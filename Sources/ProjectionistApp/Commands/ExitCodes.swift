import ArgumentParser
import EventStore
import Foundation
import Postgres

/// Every exit code a command ends with (sysexits.h where one fits); docs/reference.md lists
/// them, and a test keeps the two in step.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    /// Done, or a clean shutdown on SIGTERM/SIGINT.
    case success = 0
    /// Anything not listed below (swift-argument-parser's default for an unexpected error).
    case failure = 1
    /// EX_USAGE: a bad command line (swift-argument-parser's `ValidationError` ends here too),
    /// or an unknown projection name.
    case usage = 64
    /// EX_UNAVAILABLE: the database stayed unreachable for `database.startup_timeout`.
    case unavailable = 69
    /// EX_CANTCREAT: `migrations generate` could not write its file.
    case cannotCreate = 73
    /// EX_TEMPFAIL: `wait` timed out before the projections caught up.
    case timedOut = 75
    /// EX_CONFIG: the configuration or the schema is wrong; the unit never restarts on it.
    case configuration = 78

    /// The code to throw from a command.
    var exitCode: ExitCode { ExitCode(self.rawValue) }
}

/// The database could not be reached within `database.startup_timeout` (exit 69).
struct DatabaseUnavailableError: Error, CustomStringConvertible {
    var reason: PostgresError
    var waited: Duration
    var description: String {
        "database unreachable after \(DurationParser.format(waited)): \(reason.message). Check database.url (or PROJECTIONIST_DATABASE_URL) and that the server is up."
    }
}

/// The server refused the connection for a reason retrying cannot fix (an unknown database,
/// failed authentication) or libpq cannot parse the connection string (exit 78). The message
/// holds libpq's, scrubbed of the password.
struct DatabaseRefusedError: Error, CustomStringConvertible {
    var reason: String
    var message: String
    var description: String {
        "database.url (or PROJECTIONIST_DATABASE_URL, DATABASE_URL): \(self.reason): \(self.message). Fix the connection string, the role or the password; retrying would not help."
    }
}

/// Runs a command body and turns the errors an operator acts on into their exit codes,
/// printing one line to stderr.
func withExitCodes(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ConfigurationError {
        printError("configuration error: \(error)")
        throw ExitStatus.configuration.exitCode
    } catch let error as SchemaError {
        printError("schema error: \(error)")
        throw ExitStatus.configuration.exitCode
    } catch let error as DatabaseRefusedError {
        printError("configuration error: \(error)")
        throw ExitStatus.configuration.exitCode
    } catch let error as DatabaseUnavailableError {
        printError("error: \(error)")
        throw ExitStatus.unavailable.exitCode
    }
}

/// Writes one line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
