import Foundation
import Testing
@testable import VireoInitiator

/// The example configuration shipped in deploy/examples must parse as written.
@Suite struct InitiatorExampleConfigTests {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy/examples")

    @Test func initiatorExampleParses() throws {
        let text = try String(contentsOf: Self.examples.appendingPathComponent("initiator.toml"), encoding: .utf8)
        let config = try ServeConfig.parse(toml: text, source: "initiator.toml")
        #expect(config.disks.map(\.export) == ["vol0"])
        #expect(config.disks.first?.queues == 2)
        #expect(config.nics.map(\.network) == ["lan0"])
        #expect(config.nics.first?.queuePairs == 2)
        #expect(config.nics.first?.socket == "/run/vireo/vm1-net0.sock")
    }

}
