/// The rule for a notify channel name (`store.notify_channel`, `--notify-channel`).
///
/// The listener LISTENs on the channel as a quoted identifier and the trigger passes it to
/// `pg_notify` as a string; both agree only on a name PostgreSQL keeps as it is: at most 63
/// bytes (a longer identifier is truncated) and, so that `LISTEN` in `psql` and other tools
/// can name it too, only ASCII letters, digits, `_`, `.` and `-`. Case matters (`Events` is
/// not `events`), as with quoted identifiers.
public enum NotifyChannel {
    /// PostgreSQL's identifier limit (NAMEDATALEN - 1).
    public static let maxBytes = 63

    /// What is wrong with `name` as a channel, or nil when it is fine. The empty name is
    /// fine: it means polling only.
    public static func problem(with name: String) -> String? {
        if name.utf8.count > self.maxBytes {
            return "'\(name)' is \(name.utf8.count) bytes long; a channel name has at most \(self.maxBytes)"
        }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_.-".unicodeScalars.contains(scalar))
        }
        if !allowed {
            return "'\(name)' is not a channel name: use only ASCII letters, digits, '_', '.' and '-'"
        }
        return nil
    }
}
