import ArgumentParser
import EventStore
import Foundation
import Postgres

/// The exit codes of INTERFACE.md (sysexits.h).
enum ExitStatus {
    static let usage: Int32 = 64
    static let unavailable: Int32 = 69
    static let configuration: Int32 = 78
}

/// The database could not be reached within `database.startup_timeout` (exit 69).
struct DatabaseUnavailableError: Error, CustomStringConvertible {
    var reason: PostgresError
    var waited: Duration
    var description: String {
        "database unreachable after \(DurationParser.format(waited)): \(reason.message). Check database.url (or PROJECTIONIST_DATABASE_URL) and that the server is up."
    }
}

/// Runs a command body and turns the errors an operator acts on into their exit codes,
/// printing one line to stderr.
func withExitCodes(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ConfigurationError {
        printError("configuration error: \(error)")
        throw ExitCode(ExitStatus.configuration)
    } catch let error as SchemaError {
        printError("schema error: \(error)")
        throw ExitCode(ExitStatus.configuration)
    } catch let error as DatabaseUnavailableError {
        printError("error: \(error)")
        throw ExitCode(ExitStatus.unavailable)
    }
}

/// Writes one line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
