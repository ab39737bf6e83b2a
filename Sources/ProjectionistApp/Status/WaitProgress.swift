import Foundation

/// What `projectionist wait` draws: one projection's way from where it was to the target, as a
/// bar (on a terminal) or a plain line (in logs), with the rate and the ETA.
struct WaitProgress: Sendable, Equatable {
    var name: String
    /// The lowest checkpoint of the projection's units, when the wait began and now.
    var start: Int64
    var position: Int64
    var target: Int64
    var eventsPerSecond: Double?
    var retired = false

    var done: Bool { self.retired || self.position >= self.target }

    var fraction: Double {
        guard self.target > self.start else { return 1 }
        return min(1, max(0, Double(self.position - self.start) / Double(self.target - self.start)))
    }

    /// Seconds to the target at the current rate; nil without a rate.
    var eta: Int? {
        guard !self.done, let rate = self.eventsPerSecond, rate > 0 else { return nil }
        return Int((Double(self.target - self.position) / rate).rounded(.up))
    }

    var detail: String {
        if self.retired { return "\(self.name): retired (a successor serves its views)" }
        if self.done { return "\(self.name): caught up at \(self.position)" }
        var text = "\(self.name): \(self.position)/\(self.target)"
        if let rate = self.eventsPerSecond { text += ", \(Int(rate)) events/s" }
        if let eta = self.eta { text += ", ETA \(eta) s" }
        return text
    }

    /// `[#########-----------]  45 %  name: 12000/20000, 3400 events/s, ETA 3 s`
    func bar(width: Int = 24) -> String {
        let filled = Int((self.fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let percent = String(format: "%3d %%", Int((self.fraction * 100).rounded(.down)))
        return "[\(bar)] \(percent)  \(self.detail)"
    }
}
