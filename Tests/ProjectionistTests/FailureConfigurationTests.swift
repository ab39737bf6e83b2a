import Foundation
import ProjectionistApp
import Projections
import TestSupport
import Testing

/// The keys of a projection's failures: `on_error: park`, `retry_parked`, `reset_aggregate`.
@Suite struct FailureConfigurationTests {
    static func yaml(_ keys: String) -> String {
        """
        projections:
          - name: p
        \(keys)
            handlers:
              OrderPlaced: SELECT 1
        """
    }

    static func refusal(_ yaml: String) -> ConfigurationError? {
        do {
            _ = try ProjectionistConfiguration.parse(yaml, file: "p.yaml").sqlProjections()
            return nil
        } catch {
            return error as? ConfigurationError
        }
    }

    @Test("on_error: park with retry_parked and reset_aggregate reach the SQL projection")
    func parkReachesTheProjection() throws {
        let config = try ProjectionistConfiguration.parse(
            Self.yaml(
                """
                    on_error: park
                    retry_parked: 30s
                    reset_aggregate:
                      - DELETE FROM t WHERE type = $aggregate_type AND id = $aggregate_id;
                      - DELETE FROM u WHERE id = $aggregate_id
                """), file: "p.yaml")
        let projection = try config.sqlProjections()[0]
        #expect(projection.onError == .park)
        #expect(projection.retryParked == .seconds(30))
        #expect(projection.resetsAggregates)
        #expect(projection.resetAggregateStatements.map(\.names) == [["aggregate_type", "aggregate_id"], ["aggregate_id"]])
        #expect(projection.resetAggregateStatements[0].sql == "DELETE FROM t WHERE type = $1 AND id = $2")

        let defaults = try ProjectionistConfiguration.parse(Self.yaml(""), file: "p.yaml").sqlProjections()[0]
        #expect(defaults.onError == .stop && defaults.retryParked == nil && !defaults.resetsAggregates)
        let skip = try ProjectionistConfiguration.parse(Self.yaml("    on_error: skip"), file: "p.yaml").sqlProjections()[0]
        #expect(skip.onError == .skip)
    }

    @Test("a bad on_error lists stop, skip and park; retry_parked needs on_error: park and a duration in bounds")
    func refusals() throws {
        let bad = Self.refusal(Self.yaml("    on_error: retry"))
        #expect(bad?.keyPath == "projections[0].on_error")
        #expect(bad?.message.contains("expected stop, skip or park, found 'retry'") == true, "\(String(describing: bad))")

        for onError in ["", "    on_error: skip", "    on_error: stop"] {
            let refused = Self.refusal(Self.yaml(onError + "\n    retry_parked: 10s"))
            #expect(refused?.keyPath == "projections[0].retry_parked", "\(String(describing: refused))")
            #expect(refused?.message.contains("needs on_error: park") == true, "\(String(describing: refused))")
        }
        for value in ["0s", "2h", "soon"] {
            let refused = Self.refusal(Self.yaml("    on_error: park\n    retry_parked: \(value)"))
            #expect(refused?.keyPath == "projections[0].retry_parked", "\(value): \(String(describing: refused))")
        }
    }

    @Test("reset_aggregate takes $aggregate_type and $aggregate_id only, one statement per entry, and is not empty")
    func resetAggregateSQL() throws {
        let payload = Self.refusal(Self.yaml("    reset_aggregate: DELETE FROM t WHERE id = $payload"))
        #expect(payload?.keyPath == "projections[0].reset_aggregate", "\(String(describing: payload))")
        #expect(payload?.message.contains("unknown parameter $payload") == true, "\(String(describing: payload))")
        let second = Self.refusal(Self.yaml("    reset_aggregate:\n      - DELETE FROM t\n      - DELETE FROM t WHERE id = $1"))
        #expect(second?.keyPath == "projections[0].reset_aggregate[1]", "\(String(describing: second))")
        let two = Self.refusal(Self.yaml("    reset_aggregate: DELETE FROM t; DELETE FROM u"))
        #expect(two?.message.contains("more than one statement") == true, "\(String(describing: two))")
        let empty = Self.refusal(Self.yaml("    reset_aggregate: \"  \""))
        #expect(empty?.keyPath == "projections[0].reset_aggregate", "\(String(describing: empty))")
    }

    @Test("the commands exit 78 naming retry_parked when on_error is not park")
    func exitCode() async throws {
        let config = TemporaryFile.write(
            """
            database:
              url: "postgres://nobody@127.0.0.1:1/none"
            \(Self.yaml("    on_error: skip\n    retry_parked: 10s"))
            """)
        defer { TemporaryFile.remove(config) }
        let output = try await ProjectionistProcess.run(["dead-letters", "list", "--config", config])
        #expect(output.status == 78, "\(output.stderr)")
        #expect(output.stderr.contains("projections[0].retry_parked"), "\(output.stderr)")
    }
}
