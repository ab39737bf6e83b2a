/// The database does not have what the daemon needs (exit 78): a missing table or column,
/// or a position sequence that hands out numbers in cached blocks.
public struct SchemaError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}
