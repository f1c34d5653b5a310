import Foundation
import Logging
import Testing
@testable import VireoCommandLine
import VireoDaemon
import VireoSys
import VireoTestSupport

/// `/metrics` over HTTP and the JSON log lines (#14: observability).
@Suite struct MetricsServerTests {
    static func snapshot() -> StatsSnapshot {
        var s = StatsSnapshot()
        s.counter("vireo_test_commands_total", 42, help: "Commands.", labels: ["opcode": "read"])
        s.counter("vireo_test_commands_total", 7, help: "Commands.", labels: ["opcode": "write"])
        s.gauge("vireo_test_queues", 3, help: "Queues \"now\".")
        let h = LatencyHistogram()
        for ns: UInt64 in [1, 16_384, 16_385, 100_000, 50_000_000_000] { h.record(nanoseconds: ns) }
        s.histogram("vireo_test_latency_seconds", h, help: "Latency.", labelPairs: [("disk", "d0")])
        return s
    }

    /// Buckets: ≤ 2^14 ns, ≤ 2^15 ns, …; cumulative counts, +Inf, sum and count as
    /// Prometheus wants them (promtool checks the whole exposition in the next test).
    @Test func aLatencyHistogramIsRenderedCumulatively() {
        let text = Self.snapshot().render()
        #expect(text.contains("# TYPE vireo_test_latency_seconds histogram"))
        #expect(text.contains("vireo_test_latency_seconds_bucket{disk=\"d0\",le=\"1.6384e-05\"} 2"), "1 ns and 16384 ns")
        #expect(text.contains("vireo_test_latency_seconds_bucket{disk=\"d0\",le=\"3.2768e-05\"} 3"), "16385 ns")
        #expect(text.contains("vireo_test_latency_seconds_bucket{disk=\"d0\",le=\"0.000131072\"} 4"), "100 µs")
        #expect(text.contains("vireo_test_latency_seconds_bucket{disk=\"d0\",le=\"8.589934592\"} 4"), "50 s is beyond the last bound")
        #expect(text.contains("vireo_test_latency_seconds_bucket{disk=\"d0\",le=\"+Inf\"} 5"))
        #expect(text.contains("vireo_test_latency_seconds_count{disk=\"d0\"} 5"))
        #expect(text.contains("vireo_test_latency_seconds_sum{disk=\"d0\"} 50.00013277"))
    }

    @Test func metricsAreServedAndEverythingElseRefused() throws {
        let m = try #require(try MetricsServer.started(at: "127.0.0.1:0", logger: Logger(label: "test")) { Self.snapshot() })
        defer { m.stop() }
        let ok = try httpRequest(port: m.port, path: "/metrics")
        #expect(ok.status == 200)
        #expect(ok.body == Self.snapshot().render())
        #expect(ok.body.contains("vireo_test_commands_total{opcode=\"read\"} 42"))
        #expect(try httpRequest(port: m.port, path: "/other").status == 404)
        #expect(try httpRequest(port: m.port, method: "POST", path: "/metrics").status == 405)
        if let check = try promtoolCheck(ok.body) { #expect(check.ok, "promtool: \(check.output)") }
    }

    @Test func anAddressMustBeNumericWithAPort() {
        #expect(MetricsServer.isValidAddress("127.0.0.1:9464") && MetricsServer.isValidAddress("[::1]:9464"))
        #expect(!MetricsServer.isValidAddress("localhost") && !MetricsServer.isValidAddress("127.0.0.1")
                && !MetricsServer.isValidAddress("[::1]") && !MetricsServer.isValidAddress("1.2.3.4:99999"))
        #expect(throws: ConfigError.self) { _ = try MetricsServer.started(at: "nope:1", logger: Logger(label: "t")) { StatsSnapshot() } }
    }

    @Test func aJSONLogLineCarriesLevelLabelMessageAndMetadata() {
        let line = JSONLogHandler.line(level: .warning, label: "vireo.target", message: "dropping \"x\"\nnext",
                                       metadata: ["peer": "10.0.0.1:5", "n": .stringConvertible(3)],
                                       now: JSONLogHandler.now())
        #expect(!line.contains(10), "one line, whatever the message holds")
        let v = JSONValue.parse(line)
        #expect(v?["level"] == "warning" && v?["label"] == "vireo.target" && v?["message"] == "dropping \"x\"\nnext")
        #expect(v?["metadata"] == ["peer": "10.0.0.1:5", "n": "3"])
        let ts = v?["ts"]?.string ?? ""
        #expect(ts.count == 27 && ts.hasSuffix("Z") && ts.dropFirst(10).hasPrefix("T"), "\(ts)")
    }
}
