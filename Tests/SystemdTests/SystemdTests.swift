import Foundation
import Logging
@testable import Systemd
import Testing

@Suite struct SystemdTests {
    @Test("metadata keys become journal field names", arguments: [
        ("projection", "PROJECTION"), ("position", "POSITION"), ("db.sqlstate", "DB_SQLSTATE"), ("_x", "X"), ("gap.holder.pid", "GAP_HOLDER_PID"),
    ])
    func fieldNames(key: String, field: String) {
        #expect(JournalLogHandler.fieldName(key) == field)
    }

    @Test("levels map to syslog priorities")
    func priorities() {
        #expect(JournalLogHandler.priority(.error) == 3)
        #expect(JournalLogHandler.priority(.warning) == 4)
        #expect(JournalLogHandler.priority(.info) == 6)
        #expect(JournalLogHandler.priority(.debug) == 7)
    }

    @Test("without JOURNAL_STREAM, stderr is not the journal")
    func notJournal() {
        if ProcessInfo.processInfo.environment["JOURNAL_STREAM"] == nil {
            #expect(JournalLogHandler.stderrIsJournal == false)
        }
    }

    @Test("status lines are one line")
    func oneLine() {
        #expect(Notifier.oneLine("a\nb") == "a b")
    }
}
