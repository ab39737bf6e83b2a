import ArgumentParser
import Encryption
import Foundation
import Logging
import Postgres

/// `projectionist keys rewrap|destroy`: the operator's encryption key operations.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Encryption key operations: re-wrap data keys under the active system key, destroy a subject's keys.",
        subcommands: [Rewrap.self, Destroy.self])

    /// `keys rewrap`: every data key not under the active system key, re-wrapped under it.
    struct Rewrap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-wrap every data key not under encryption.active_key, in batches (event data is not touched).",
            discussion: "Afterwards the old system key files can leave the keyring. Safe to interrupt and run again.")

        @Option(help: "Data keys per transaction.") var batch = 100
        @Flag(help: "Only count the data keys to re-wrap.") var dryRun = false
        @OptionGroup var options: ConfigOption

        func validate() throws {
            guard self.batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        }

        func run() async throws {
            try await withExitCodes {
                let config = try self.options.load()
                let keyStore = try config.keyStore()
                let connection = try await config.connect(for: "keys")
                let result = try await keyStore.rewrap(RewrapOptions(batchSize: self.batch, dryRun: self.dryRun), on: connection)
                let active = keyStore.keyring.activeKeyID
                if self.dryRun {
                    print("dry run: \(result.remainingRows) data key(s) to re-wrap under system key '\(active)'")
                    return
                }
                Operator.audit(
                    "Re-wrapped data keys under the active system key.",
                    ["system_key": "\(active)", "rewrapped": "\(result.rewrappedRows)", "batches": "\(result.batches)", "remaining": "\(result.remainingRows)"])
                print("re-wrapped \(result.rewrappedRows) data key(s) under system key '\(active)' in \(result.batches) batch(es); \(result.remainingRows) remaining")
                if result.remainingRows > 0 {
                    printError("warning: \(result.remainingRows) data key(s) are still under other system keys (locked by another transaction meanwhile?): run it again")
                    throw ExitCode.failure
                }
            }
        }
    }

    /// `keys destroy SCOPE SCOPE_ID`: crypto-shredding, audited.
    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destroy every version of a subject's data key (crypto-shredding); audited in the log.",
            discussion: """
                Encrypted fields of that subject can never be decrypted again: projections with decrypt: true see them \
                as null (reset a projection to rebuild its read model without them). Cannot be undone. On a terminal it \
                asks for confirmation first (--yes skips it); without a terminal on stdin it does not ask.
                """)

        @Argument(help: "The key's scope, e.g. customer-pii.") var scope: String
        @Argument(help: "The subject within the scope, e.g. customer-42.") var scopeID: String
        @Flag(name: [.short, .long], help: "Do not ask for confirmation on a terminal.") var yes = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withExitCodes {
                let config = try self.options.load()
                let keyStore = try config.keyStore()
                let connection = try await config.connect(for: "keys")
                let subject = "scope '\(self.scope)', scope_id '\(self.scopeID)'"
                if !self.yes, isatty(STDIN_FILENO) == 1 {
                    let versions = try await keyStore.versionCount(scope: self.scope, scopeID: self.scopeID, on: connection)
                    if versions > 0, !Self.confirm("destroy \(versions) version(s) of the data key of \(subject) in \(keyStore.table)?") {
                        printError("not confirmed: nothing destroyed")
                        throw ExitCode.failure
                    }
                }
                let destroyed = try await connection.transaction { tx in
                    try await keyStore.destroyKeys(scope: self.scope, scopeID: self.scopeID, on: tx)
                }
                let metadata: Logger.Metadata = [
                    "scope": "\(self.scope)", "scope_id": "\(self.scopeID)", "versions": "\(destroyed)", "table": "\(keyStore.table)",
                ]
                if destroyed == 0 {
                    Operator.audit("No data key to destroy for the subject: nothing destroyed.", metadata)
                    print("no data key for \(subject) in \(keyStore.table): nothing destroyed")
                } else {
                    Operator.audit("Destroyed \(destroyed) version(s) of a subject's data key.", metadata)
                    print("destroyed \(destroyed) version(s) of the data key of \(subject)")
                }
            }
        }

        /// Asks on stderr; true when the answer read from stdin is `yes` (or `y`).
        static func confirm(_ question: String) -> Bool {
            FileHandle.standardError.write(Data("\(question) This cannot be undone. Type yes to confirm: ".utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
            return answer == "yes" || answer == "y"
        }
    }
}
