import Foundation
import Logging

/// Who ran an audited command, and its audit entry.
enum Operator {
    /// Logs `message` as a notice (the journal when stderr is the journal) with who ran it.
    static func audit(_ message: Logger.Message, _ metadata: Logger.Metadata, label: String = "projectionist.keys") {
        LoggingSetup.bootstrap()
        Logger(label: label).notice(message, metadata: metadata.merging(["operator": "\(self.name)"]) { $1 })
    }

    /// The login behind sudo when there is one, else the user, with the uid.
    static var name: String {
        let environment = ProcessInfo.processInfo.environment
        let uid = getuid()
        let user = environment["SUDO_USER"] ?? environment["USER"] ?? environment["LOGNAME"]
        return user.map { "\($0) (uid \(uid))" } ?? "uid \(uid)"
    }
}
