import Foundation
import Testing
@testable import VireoBlockTarget
@testable import VireoTarget

/// The example configuration shipped in deploy/examples must parse as written.
@Suite struct ExampleConfigTests {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy/examples")

    @Test func targetExampleParses() throws {
        let text = try String(contentsOf: Self.examples.appendingPathComponent("target.toml"), encoding: .utf8)
        let config = try TargetConfig(toml: text)
        #expect(config.listen == "10.99.0.1:4420")
        #expect(config.exports.map(\.name) == ["vol0", "scratch"])
        #expect(config.networks.map(\.name) == ["lan0"])
        #expect(config.networks.first?.tap == "vireo-lan0")
        #expect(config.networks.first?.mtu == 1500)
    }
}
