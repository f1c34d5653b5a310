import Foundation
import Testing
@testable import VireoBlockTarget
import VireoInitiator
@testable import VireoTarget

/// The example configurations shipped in deploy/examples must parse as written
/// (their key files are read only when a daemon starts).
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
        #expect(config.name == "storage-1" && config.hosts.map(\.name) == ["compute-1"])
        #expect(config.exports.allSatisfy { $0.access.allowedHosts == ["compute-1"] })
        #expect(config.networks.first?.access.allowedHosts == ["compute-1"])
    }

    @Test func initiatorExampleParses() throws {
        let text = try String(contentsOf: Self.examples.appendingPathComponent("initiator.toml"), encoding: .utf8)
        let config = try ServeConfig.parse(toml: text)
        #expect(config.hostName == "compute-1" && config.hostKeyFile == "/etc/vireo/host.key")
        #expect(config.disks.first?.targetTrust == TargetTrust(keyFiles: ["/etc/vireo/targets/storage-1.key"], name: "storage-1"))
        #expect(config.nics.first?.targetTrust.keyFiles == ["/etc/vireo/targets/storage-1.key"])
    }
}
