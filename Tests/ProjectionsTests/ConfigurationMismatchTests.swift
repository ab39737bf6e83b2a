import Foundation
@testable import Projections
import Testing

@Suite struct ConfigurationMismatchTests {
    func instance(_ pid: Int32, _ units: Set<String>?) -> LiveInstance {
        LiveInstance(id: UUID(), hostname: "h", pid: pid, units: units)
    }

    @Test("names each other instance with the units it lacks or has beyond this one's; same lists or unknown lists: nothing")
    func lines() {
        let mismatch = ConfigurationMismatch(
            units: ["p", "q"], others: [self.instance(2, ["q", "r"]), self.instance(3, ["p", "q"]), self.instance(4, nil)])
        #expect(mismatch.lines == [
            "instance h/2 does not configure p: only instances configuring a unit run it",
            "instance h/2 configures r, which this instance does not: it runs them only while it is live",
        ])
        #expect(ConfigurationMismatch(units: ["p"], others: [self.instance(3, ["p"]), self.instance(4, nil)]).isEmpty)
    }

    @Test("equal from tick to tick while nothing changes, so the warning is logged once")
    func stable() {
        let others = [self.instance(2, ["q"])]
        #expect(ConfigurationMismatch(units: ["p"], others: others) == ConfigurationMismatch(units: ["p"], others: others))
        #expect(ConfigurationMismatch(units: ["p"], others: others) != ConfigurationMismatch(units: ["p", "q"], others: others))
    }
}
