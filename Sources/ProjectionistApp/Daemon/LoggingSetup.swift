import Logging
import Systemd

/// Bootstraps swift-log once: structured journal entries when stderr is the journal, plain
/// lines with their level on stderr otherwise.
enum LoggingSetup {
    static func bootstrap(level: Logger.Level = .info) {
        let journal = JournalLogHandler.stderrIsJournal
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = journal ? JournalLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
