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
        return s
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
