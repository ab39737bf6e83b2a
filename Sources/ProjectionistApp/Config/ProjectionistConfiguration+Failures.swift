import Projections
import Yams

extension ProjectionistConfiguration {
    /// A projection's keys for its failures besides `on_error`: `retry_parked` (only with
    /// `on_error: park`) and `reset_aggregate` (one statement or a list, like a handler).
    static func readFailureKeys(_ keys: [String: Node], at path: String, into projection: inout Projection, _ reader: YAMLReader) throws {
        if let value = keys["retry_parked"] {
            guard projection.onError == .park else {
                throw reader.error(
                    "\(path).retry_parked", value,
                    "retries parked aggregates, so it needs on_error: park (this projection has on_error: \(projection.onError.rawValue)); remove the key or set on_error: park")
            }
            projection.retryParked = try reader.duration(
                value, at: "\(path).retry_parked", in: Bounds.retryParked, why: " (the delay doubles with each failed try, up to an hour)")
        }
        if let value = keys["reset_aggregate"] {
            let statements = try reader.stringOrList(value, at: "\(path).reset_aggregate")
            guard !statements.isEmpty, statements.allSatisfy({ $0.contains(where: { !$0.isWhitespace }) }) else {
                throw reader.error("\(path).reset_aggregate", value, "empty: give one SQL statement or a list of them")
            }
            projection.resetAggregate = statements
        }
    }
}
