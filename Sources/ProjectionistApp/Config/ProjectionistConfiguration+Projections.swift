import Encryption
import EventStore
import Foundation
import Projections
import Yams

extension ProjectionistConfiguration {
    /// The `projections` list: each entry's keys, checked one by one, then the versions across
    /// entries (`replaces`, `publish`).
    mutating func readProjections(_ node: Node, _ reader: YAMLReader) throws {
        for (index, entry) in try reader.sequence(node, at: "projections").enumerated() {
            let path = "projections[\(index)]"
            let keys = try reader.mapping(entry, at: path, allowed: Keys.projection)
            guard let nameNode = keys["name"] else { throw reader.error(path, entry, "missing key 'name'") }
            var projection = Projection(name: try reader.string(nameNode, at: "\(path).name"), line: entry.mark?.line)
            guard !projection.name.isEmpty else { throw reader.error("\(path).name", nameNode, "must not be empty") }
            try Self.refuseNUL(projection.name, "\(path).name", nameNode, reader)
            guard !projection.name.contains("#"), !projection.name.contains("/") else {
                throw reader.error(
                    "\(path).name", nameNode,
                    "'\(projection.name)': a projection's name must not contain '#' or '/' (they separate the partition in checkpoint names, e.g. name#0/2)")
            }
            if let other = self.projections.first(where: { $0.name == projection.name }) {
                throw reader.error(
                    "\(path).name", nameNode,
                    "duplicate projection name '\(projection.name)' (first declared at line \(other.line.map(String.init) ?? "?"))")
            }
            if let (key, value) = try Self.typesKey(keys, path, reader) {
                let types = try reader.sequence(value, at: "\(path).\(key)").enumerated().map {
                    let text = try reader.string($0.element, at: "\(path).\(key)[\($0.offset)]")
                    try Self.refuseNUL(text, "\(path).\(key)[\($0.offset)]", $0.element, reader)
                    return text
                }
                guard !types.isEmpty else {
                    throw reader.error("\(path).\(key)", value, "an empty list matches nothing; omit the key for every event")
                }
                projection.aggregateTypes = types
            }
            if let value = keys["on_error"] {
                let text = try reader.string(value, at: "\(path).on_error")
                guard let onError = Projection.OnError(rawValue: text) else {
                    throw reader.error("\(path).on_error", value, "expected stop, skip or park, found '\(text)'")
                }
                projection.onError = onError
            }
            if let value = keys["partitions"] {
                projection.partitions = try reader.integer(
                    value, at: "\(path).partitions", in: Bounds.partitions, why: " (each partition is a unit of work of its own: a checkpoint, a lease, its batches)")
            }
            if let value = keys["publish"] { projection.publish = try Self.publications(value, of: projection.name, at: "\(path).publish", reader) }
            if let value = keys["replaces"] {
                projection.replaces = try reader.string(value, at: "\(path).replaces")
                guard projection.replaces != projection.name else {
                    throw reader.error("\(path).replaces", value, "a projection cannot replace itself")
                }
            }
            if let value = keys["drop"] { projection.drop = try reader.string(value, at: "\(path).drop") }
            if let value = keys["decrypt"] {
                if case .sequence = value {
                    projection.encryptedFields = try Self.encryptedFields(value, at: "\(path).decrypt", reader)
                    projection.decrypt = true
                } else {
                    projection.decrypt = try reader.bool(value, at: "\(path).decrypt")
                }
                guard !projection.decrypt || self.encryption != nil else {
                    throw reader.error("\(path).decrypt", value, "needs a keyring: add an encryption section (system_keys, active_key)")
                }
            }
            if let value = keys["setup"] { projection.setup = try reader.string(value, at: "\(path).setup") }
            if let value = keys["reset"] { projection.reset = try reader.string(value, at: "\(path).reset") }
            try Self.readFailureKeys(keys, at: path, into: &projection, reader)
            guard let handlersNode = keys["handlers"] else {
                throw reader.error(path, entry, "missing key 'handlers' (event type → SQL)")
            }
            guard case .mapping(let handlers) = handlersNode, !handlers.isEmpty else {
                throw reader.error("\(path).handlers", handlersNode, "expected a mapping of event type → SQL statement(s)")
            }
            for (key, value) in handlers {
                let eventType = try reader.string(key, at: "\(path).handlers")
                try Self.refuseNUL(eventType, "\(path).handlers", key, reader)
                let handlerPath = "\(path).handlers.\(eventType)"
                guard !projection.handlers.contains(where: { $0.eventType == eventType }) else {
                    throw reader.error(handlerPath, key, "duplicate handler for this event type")
                }
                let statements = try reader.stringOrList(value, at: handlerPath)
                guard !statements.isEmpty, statements.allSatisfy({ !$0.trimmingSpaces.isEmpty }) else {
                    throw reader.error(handlerPath, value, "empty handler: give one SQL statement or a list of them")
                }
                projection.handlers.append((eventType, statements))
            }
            self.projections.append(projection)
        }
        try self.validateVersions(reader)
    }
}
