import Postgres
import Yams

/// `publish` and `replaces`: the views readers query, and which projection takes them over
/// from which (versioned projections, rebuilt without downtime).
extension ProjectionistConfiguration {
    /// `publish: VIEW` (the table named like the projection) or `publish: {VIEW: TABLE, ...}`.
    static func publications(_ node: Node, of projection: String, at path: String, _ reader: YAMLReader) throws -> [String: String] {
        func name(_ node: Node, _ path: String) throws -> String {
            let text = try reader.string(node, at: path)
            guard (try? QualifiedName(parsing: text)) != nil else {
                throw reader.error(path, node, "'\(text)' is not a view or table name: use name or schema.name")
            }
            return text
        }
        if case .mapping(let mapping) = node {
            var views: [String: String] = [:]
            for (key, value) in mapping {
                let view = try name(key, path)
                guard views[view] == nil else { throw reader.error("\(path).\(view)", key, "duplicate view") }
                views[view] = try name(value, "\(path).\(view)")
            }
            guard !views.isEmpty else { throw reader.error(path, node, "an empty map publishes nothing; omit the key") }
            return views
        }
        return [try name(node, path): projection]
    }

    /// Refuses `replaces` naming no configured projection or going round in a loop, two
    /// projections publishing one view without one replacing the other, a successor that does
    /// not publish a view its predecessor does, and a view that is also a projection's table.
    func validateVersions(_ reader: YAMLReader) throws {
        let byName = Dictionary(uniqueKeysWithValues: self.projections.map { ($0.name, $0) })
        for (index, projection) in self.projections.enumerated() {
            guard let replaced = projection.replaces else { continue }
            let path = "projections[\(index)].replaces"
            guard byName[replaced] != nil else {
                throw ConfigurationError(
                    file: self.file, keyPath: path, line: projection.line,
                    message: "'\(replaced)' is not a configured projection (configured: \(self.projections.map(\.name).joined(separator: ", ")))")
            }
            var seen: Set<String> = [projection.name]
            var next: String? = replaced
            while let current = next {
                guard seen.insert(current).inserted else {
                    throw ConfigurationError(
                        file: self.file, keyPath: path, line: projection.line,
                        message: "replaces forms a loop: \(([projection.name] + self.chain(from: replaced, byName, limit: seen.count)).joined(separator: " → "))")
                }
                next = byName[current]?.replaces
            }
            for view in byName[replaced]!.publish.keys.sorted() where projection.publish[view] == nil {
                throw ConfigurationError(
                    file: self.file, keyPath: "projections[\(index)].publish", line: projection.line,
                    message: "replaces '\(replaced)' but does not publish its view '\(view)': readers would keep reading the retired version")
            }
        }
        var publishers: [String: [Int]] = [:]
        for (index, projection) in self.projections.enumerated() {
            for view in projection.publish.keys { publishers[view, default: []].append(index) }
        }
        for (view, indices) in publishers.sorted(by: { $0.key < $1.key }) {
            for (a, b) in zip(indices, indices.dropFirst()) {
                let first = self.projections[a], second = self.projections[b]
                guard self.succeeds(second.name, first.name, byName) || self.succeeds(first.name, second.name, byName) else {
                    throw ConfigurationError(
                        file: self.file, keyPath: "projections[\(b)].publish", line: second.line,
                        message: "view '\(view)' is also published by '\(first.name)': two live projections cannot publish one view; declare replaces: \(first.name) to build a successor")
                }
            }
            if let owner = self.projections.first(where: { $0.name == view }) {
                throw ConfigurationError(
                    file: self.file, keyPath: "projections[\(indices[0])].publish", line: self.projections[indices[0]].line,
                    message: "view '\(view)' has the name of projection '\(owner.name)' (whose table it would hide): publish under another name")
            }
        }
    }

    /// Whether `later` replaces `earlier`, directly or through a chain.
    private func succeeds(_ later: String, _ earlier: String, _ byName: [String: Projection]) -> Bool {
        var next = byName[later]?.replaces
        var steps = 0
        while let current = next, steps <= self.projections.count {
            if current == earlier { return true }
            next = byName[current]?.replaces
            steps += 1
        }
        return false
    }

    private func chain(from start: String, _ byName: [String: Projection], limit: Int) -> [String] {
        var names = [start]
        var next = byName[start]?.replaces
        while let current = next, names.count < limit + 1 {
            names.append(current)
            next = byName[current]?.replaces
        }
        return names
    }
}
