import Foundation

/// The units this instance and the other live instances do not configure alike: a pure value,
/// compared between ticks so that the coordinator warns once per change, not every tick.
struct ConfigurationMismatch: Sendable, Equatable {
    /// Units this instance configures and the named instances do not.
    var onlyHere: [String: [String]] = [:]
    /// Units the named instance configures and this one does not.
    var onlyThere: [String: [String]] = [:]

    var isEmpty: Bool { self.onlyHere.isEmpty && self.onlyThere.isEmpty }

    /// - Parameters:
    ///   - units: the units this instance configures.
    ///   - others: the other live instances; one whose units are unknown is left out.
    init(units: [String], others: [LiveInstance]) {
        let mine = Set(units)
        for other in others.sorted(by: { $0.name < $1.name }) {
            guard let theirs = other.units else { continue }
            let missing = mine.subtracting(theirs).sorted()
            let extra = theirs.subtracting(mine).sorted()
            if !missing.isEmpty { self.onlyHere[other.name] = missing }
            if !extra.isEmpty { self.onlyThere[other.name] = extra }
        }
    }

    /// One line per instance: what differs, and what it means for the units' owners.
    var lines: [String] {
        self.onlyHere.keys.sorted().map { "instance \($0) does not configure \(self.onlyHere[$0]!.joined(separator: ", ")): only instances configuring a unit run it" }
            + self.onlyThere.keys.sorted().map { "instance \($0) configures \(self.onlyThere[$0]!.joined(separator: ", ")), which this instance does not: it runs them only while it is live" }
    }
}
