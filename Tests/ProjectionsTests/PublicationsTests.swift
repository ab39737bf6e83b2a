@testable import Projections
import Testing

@Suite struct PublicationsTests {
    @Test("a successor is ready once every partition has a checkpoint no older than the predecessor's and within a batch of the head")
    func ready() {
        #expect(Publications.ready(successor: [100, 120], predecessor: [100], head: 150, batchSize: 50))
        #expect(!Publications.ready(successor: [100, nil], predecessor: [100], head: 100, batchSize: 50), "a partition never ran")
        #expect(!Publications.ready(successor: [90], predecessor: [100], head: 100, batchSize: 50), "older than the live version")
        #expect(!Publications.ready(successor: [100], predecessor: [100], head: 200, batchSize: 50), "not caught up")
        #expect(Publications.ready(successor: [10], predecessor: [nil], head: 10, batchSize: 50), "the predecessor never ran")
        #expect(!Publications.ready(successor: [], predecessor: [1], head: 1, batchSize: 50))
    }

    @Test("the rate: nil until half a second of samples, events per second over the window, 0 once idle past it")
    func rate() {
        var meter = RateMeter()
        let start = ContinuousClock.now
        #expect(meter.rate(at: start) == nil)
        meter.add(100, at: start)
        #expect(meter.rate(at: start + .milliseconds(100)) == nil)
        meter.add(1000, at: start + .seconds(1))
        meter.add(1000, at: start + .seconds(2))
        #expect(meter.rate(at: start + .seconds(2)) == 1000)
        #expect(meter.rate(at: start + .seconds(30)) == 0)
    }
}
