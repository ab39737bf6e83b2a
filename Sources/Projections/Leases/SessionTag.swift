/// How a runner's batch transaction names itself in `pg_stat_activity` (`application_name`,
/// set for the transaction only, so it works behind a transaction pooler too):
/// `projectionist <unit hash> <fencing token>`. `status` finds a unit's batch in flight by it,
/// and a new owner finds (and ends) the transactions of owners it fenced off.
enum SessionTag {
    static let pattern = "^projectionist [0-9a-f]{16} [0-9]+$"

    static func applicationName(unit: String, token: Int64) -> String {
        "projectionist \(self.unitHash(unit)) \(token)"
    }

    /// FNV-1a (64 bits) of the unit's name, in hex: fixed length, so the tag always fits
    /// `application_name`'s 63 bytes whatever the projection is called.
    static func unitHash(_ unit: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in unit.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// SQL (a boolean) true for a tagged session of the unit whose hash is `hashParameter`; with
    /// `belowTokenParameter`, only for tokens below it. Reads `application_name`.
    static func matches(hash hashParameter: String, belowToken belowTokenParameter: String? = nil) -> String {
        let token = "(CASE WHEN application_name ~ '\(pattern)' THEN split_part(application_name, ' ', 3)::bigint END)"
        var sql = "(application_name ~ '\(pattern)' AND split_part(application_name, ' ', 2) = \(hashParameter)"
        if let belowTokenParameter { sql += " AND \(token) < \(belowTokenParameter)" }
        return sql + ")"
    }
}
