import CLibPQ
import Foundation

extension ConnectionConfiguration {
    /// Why libpq cannot parse the connection string (a URL or keyword string), scrubbed of
    /// secrets; nil when it parses (or is empty: libpq's `PG*` variables then apply).
    public var parseProblem: String? {
        guard !self.connectionString.isEmpty else { return nil }
        var message: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(self.connectionString, &message) else {
            defer { if let message { PQfreemem(message) } }
            let text = message.map { String(cString: $0) } ?? "out of memory"
            return self.scrub(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        PQconninfoFree(options)
        return nil
    }

    /// Where it connects, without secrets: `host:port/dbname` as far as the string (or libpq's
    /// `PGHOST`, `PGPORT`, `PGDATABASE`) says, for messages such as "waiting for ...".
    public var target: String {
        var values: [String: String] = [:]
        if !self.connectionString.isEmpty, let options = PQconninfoParse(self.connectionString, nil) {
            var option = options
            while let keyword = option.pointee.keyword {
                if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
                option += 1
            }
            PQconninfoFree(options)
        }
        let environment = ProcessInfo.processInfo.environment
        let host = values["host"] ?? values["hostaddr"] ?? environment["PGHOST"] ?? "the local socket"
        let port = values["port"] ?? environment["PGPORT"] ?? "5432"
        let database = values["dbname"] ?? environment["PGDATABASE"]
        return self.scrub("\(host):\(port)" + (database.map { "/\($0)" } ?? ""))
    }
}
