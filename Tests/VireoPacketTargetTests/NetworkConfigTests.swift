import Testing
import VireoBlockTarget
import VireoPacketTarget
import VireoWire
import VireoTarget
import VireoDaemon
import VireoTestSupport

@Suite struct NetworkConfigTests {
    @Test func tomlWithExportsAndNetworks() throws {
        let c = try TargetConfig(toml: """
            listen = "10.99.0.1:4420"
            [[export]]
            name = "vol0"
            memory = true
            size = "1M"
            [[network]]
            name = "lan0"
            mtu = 9000
            tap = "vireo-lan0"
            allowed_macs = ["52:54:00:00:00:01", "52:54:00:00:00:02"]
            aging = 60
            [[network]]
            name = "lan1"
            """)
        #expect(c.exports.count == 1)
        #expect(c.networks.count == 2)
        let n = c.networks[0]
        #expect(n.name == "lan0" && n.mtu == 9000 && n.tap == "vireo-lan0" && n.agingSeconds == 60)
        #expect(n.allowedMACs == [MACAddress("52:54:00:00:00:01")!, MACAddress("52:54:00:00:00:02")!])
        #expect(n.maxFrameBytes == 9030)
        #expect(c.networks[1] == NetworkConfig(name: "lan1"))
    }

    @Test func networksAloneAreEnough() throws {
        let c = try TargetConfig(toml: "[[network]]\nname = \"lan0\"\n")
        #expect(c.exports.isEmpty && c.networks.count == 1)
    }

    @Test(arguments: [
        ("[[network]]\nmtu = 1500", "network #1: name is missing"),
        ("[[network]]\nname = \"lan0\"\nmtu = 20", "mtu 20 must be"),
        ("[[network]]\nname = \"lan0\"\nmtu = \"big\"", "mtu must be an integer"),
        ("[[network]]\nname = \"lan0\"\nallowed_macs = [\"zz\"]", "not a MAC address"),
        ("[[network]]\nname = \"lan0\"\nallowed_macs = [\"ff:ff:ff:ff:ff:ff\"]", "must be unicast"),
        ("[[network]]\nname = \"lan0\"\ncolour = 1", "unknown key 'colour'"),
        ("[[network]]\nname = \"lan0\"\ntap = \"a-name-far-too-long-for-linux\"", "1-15 characters"),
        ("[[network]]\nname = \"lan0\"\n[[network]]\nname = \"lan0\"", "configured twice"),
        ("[[network]]\nname = \"x\"\ntap = \"t0\"\n[[network]]\nname = \"y\"\ntap = \"t0\"", "used twice"),
        ("[[export]]\nname = \"same\"\nmemory = true\nsize = \"1M\"\n[[network]]\nname = \"same\"", "shares an export's name"),
        ("network = 3", "array of tables"),
        ("[[network]]\nname = \"lan0\"\naging = 0", "aging 0"),
    ])
    func badTomlIsReported(_ text: String, _ expected: String) {
        expectConfigProblem(expected) { _ = try TargetConfig(toml: text) }
    }

    @Test func flagsParse() throws {
        let n = try NetworkConfig(flag: "name=lan0,mtu=9000,tap=vtap0,aging=30,allowed-macs=52:54:00:00:00:01+52:54:00:00:00:02")
        #expect(n.name == "lan0" && n.mtu == 9000 && n.tap == "vtap0" && n.agingSeconds == 30)
        #expect(n.allowedMACs?.count == 2)
        #expect(try NetworkConfig(flag: "name=lan1") == NetworkConfig(name: "lan1"))
    }

    @Test(arguments: ["mtu=1500", "name=lan0,mtu=big", "name=lan0,bogus=1", "name=lan0,allowed-macs=nope", "name=lan0,tap="])
    func badFlagsAreRefused(_ text: String) {
        #expect(throws: ConfigError.self) { _ = try NetworkConfig(flag: text) }
    }

    @Test func flagConfigIsValidated() {
        var c = TargetConfig(networks: [try! NetworkConfig(flag: "name=lan0,mtu=70000")])
        #expect(c.problems().contains { $0.contains("mtu 70000") })
        c.networks = [NetworkConfig(name: "lan0")]
        #expect(c.problems().isEmpty)
    }
}

/// Named ports with their own MAC allow-lists.
@Suite struct NamedPortConfigTests {
    static let m1 = MACAddress("52:54:00:00:0a:01")!, m2 = MACAddress("52:54:00:00:0a:02")!

    @Test func tomlPorts() throws {
        let c = try TargetConfig(toml: """
            [[network]]
            name = "lan0"
            allowed_macs = ["52:54:00:00:0a:01", "52:54:00:00:0a:02", "52:54:00:00:0b:01"]
            [[network.port]]
            name = "vm1"
            allowed_macs = ["52:54:00:00:0a:01", "52:54:00:00:0a:02"]
            [[network.port]]
            name = "vm2"
            """)
        #expect(c.networks[0].ports == [PortConfig(name: "vm1", allowedMACs: [Self.m1, Self.m2]), PortConfig(name: "vm2")])
    }

    @Test func flagPorts() throws {
        let n = try NetworkConfig(flag: "name=lan0,port=vm1:52:54:00:00:0a:01+52:54:00:00:0a:02,port=vm2")
        #expect(n.ports == [PortConfig(name: "vm1", allowedMACs: [Self.m1, Self.m2]), PortConfig(name: "vm2")])
        #expect(throws: ConfigError.self) { try NetworkConfig(flag: "name=lan0,port=vm1:nope") }
        #expect(throws: ConfigError.self) { try NetworkConfig(flag: "name=lan0,port=") }
    }

    @Test(arguments: [
        ("[[network]]\nname = \"lan0\"\n[[network.port]]\nallowed_macs = []\n", "port #1: name is missing"),
        ("[[network]]\nname = \"lan0\"\n[[network.port]]\nname = \"vm1\"\nbogus = 1\n", "unknown key 'bogus'"),
        ("[[network]]\nname = \"lan0\"\n[[network.port]]\nname = \"vm1\"\nallowed_macs = [\"x\"]\n", "not a MAC"),
        ("[[network]]\nname = \"lan0\"\n[[network.port]]\nname = \"vm1\"\n[[network.port]]\nname = \"vm1\"\n", "listed twice"),
        ("[[network]]\nname = \"lan0\"\n[[network.port]]\nname = \"vm:1\"\n", "1-15 characters"),
        ("[[network]]\nname = \"lan0\"\n[[network.port]]\nname = \"vm1\"\nallowed_macs = []\n", "is empty"),
        ("[[network]]\nname = \"lan0\"\n[[network.port]]\nname = \"vm1\"\nallowed_macs = [\"ff:ff:ff:ff:ff:ff\"]\n", "unicast"),
    ])
    func badPortsAreReported(toml: String, message: String) {
        expectConfigProblem(message) { _ = try TargetConfig(toml: toml) }
    }
}
