import Foundation
import Logging
import Testing
import VireoDaemon
import VireoFabric
@testable import VireoInitiator
#if canImport(Glibc)
import Glibc
#endif

/// The initiator's control API and running configuration, on the host (no target
/// needed): what the file says reads back equal from `config_get`, an initiator with a
/// control socket may start with no device, and the methods answer bad or unknown
/// parameters with errors that say what to do. The lab's hot-add proof
/// (Tests/lab/remote-hotplug-guest.sh) adds and removes devices of a running QEMU guest.
@Suite struct InitiatorControlTests {
    static let rich = """
        stats_file = "/run/vireo/initiator.prom"
        stats_interval = 2.5
        metrics_listen = "127.0.0.1:9465"
        host_name = "compute-1"
        host_key_file = "/etc/vireo/host.key"
        control_socket = "/run/vireo/initiator.sock"
        control_socket_mode = 0o660

        [[disk]]
        socket = "/run/vireo/vm1 \\"disk0\\".sock"
        target = "10.99.0.1:4420"
        export = "vol0"
        queues = 2
        queue_depth = 64
        read_only = true
        loss_timeout = "1500ms"
        remote_access = "whole-memory"
        target_key_files = ["/etc/vireo/t.key", "/etc/vireo/t.new.key"]
        target_name = "storage-1"

        [[nic]]
        socket = "/run/vireo/vm1-net0.sock"
        target = "[fe80::1]:4421"
        network = "lan0"
        mac = "52:54:00:00:0a:01"
        queue_pairs = 2
        queue_size = 512
        port = "vm1"
        """

    /// An initiator serving nothing yet, with a control socket configured (not served here).
    static func emptyService() throws -> (InitiatorService, ServeConfig) {
        var logger = Logger(label: "test.initiator.control")
        logger.logLevel = .critical
        var config = ServeConfig()
        config.controlSocket = "/tmp/unused.sock"
        return (try InitiatorService(config, logger: logger), config)
    }

    @Test func theRunningConfigurationReadsBackEqual() throws {
        let c = try ServeConfig.parse(toml: Self.rich)
        #expect(c.disks.count == 1 && c.nics.count == 1)
        let text = c.tomlText
        #expect(try ServeConfig.parse(toml: text) == c, "\(text)")
        #expect(text.contains("control_socket_mode = 0o660"))
        var bare = ServeConfig()
        bare.controlSocket = "/run/vireo/initiator.sock"
        #expect(try ServeConfig.parse(toml: bare.tomlText) == bare)
        #expect(throws: Never.self) { try bare.checkUnique() }
    }

    @Test func withoutDevicesOrAControlSocketNothingIsServed() {
        #expect(throws: ConfigError.self) { try ServeConfig().checkUnique() }
        var o = InitiatorServeOptions()
        o.controlSocket = "/tmp/vireo-ctl-test.sock"
        #expect(throws: Never.self) { _ = try o.resolve() }
    }

    @Test func aDiskFromParamsEqualsTheSameTable() throws {
        let toml = try ServeConfig.parse(toml: """
            [[disk]]
            socket = "/run/vireo/d.sock"
            target = "10.99.0.1:4420"
            export = "vol9"
            queues = 4
            read_only = true
            loss_timeout = "30s"
            """).disks[0]
        let r = JSONParamsReader(["socket": "/run/vireo/d.sock", "target": "10.99.0.1:4420", "export": "vol9",
                                  "queues": 4, "read_only": true, "loss_timeout": "30s"])
        let json = DiskConfig(reading: r)
        #expect(r.finish().isEmpty)
        #expect(json == toml)
    }

    /// The methods' answers with no device served: empty lists, unknown sockets, bad
    /// parameters, and a target nobody answers at (the create fails with its reason and
    /// leaves nothing behind).
    @Test func methodsAnswerWithActionableErrors() throws {
        let (service, config) = try Self.emptyService()
        defer { service.stop() }
        let api = ControlProtocol(methods: service.controlMethods())
        func call(_ method: String, _ params: JSONValue? = nil) -> JSONValue {
            var request: [String: JSONValue] = ["jsonrpc": "2.0", "id": 1, "method": .string(method)]
            if let params { request["params"] = params }
            return JSONValue.parse(api.respond(to: JSONValue.object(request).encoded)!)!
        }
        #expect(call("disk_list")["result"] == .array([]))
        #expect(call("nic_list")["result"] == .array([]))
        #expect(call("version_get")["result"]?["daemon"] == "vireo-initiator")
        let missing = call("disk_delete", ["socket": "/tmp/none.sock"])["error"]
        #expect(missing?["code"] == .int(-32001))
        #expect(missing?["message"]?.string?.contains("disk_list shows them all") == true)
        let bad = call("disk_create", ["socket": "/tmp/d.sock", "export": "vol0", "queues": 0, "colour": "red"])["error"]
        #expect(bad?["code"] == .int(-32602))
        let message = bad?["message"]?.string ?? ""
        #expect(message.contains("target is missing"), "\(message)")
        #expect(message.contains("queues must be 1...64, not 0"), "\(message)")
        #expect(message.contains("unknown parameter 'colour'"), "\(message)")
        let badMac = call("nic_create", ["socket": "/tmp/n.sock", "target": "10.99.0.1:4421", "network": "lan0", "mac": "01:00:00:00:00:01"])["error"]
        #expect(badMac?["message"]?.string?.contains("multicast") == true)
        // Nothing listens on port 1 (and the host may have no RDMA device at all).
        let unreachable = call("disk_create", ["socket": "/tmp/vireo-ctl-unreach.sock", "target": "127.0.0.1:1", "export": "vol0"])["error"]
        #expect(unreachable?["code"] == .int(-32004), "\(String(describing: unreachable))")
        #expect(service.disks.isEmpty)
        #expect(try ServeConfig.parse(toml: call("config_get")["result"]?["toml"]?.string ?? "") == config)
        // docs/api-initiator.openrpc.json describes exactly the methods the initiator serves.
        let schemaPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../docs/api-initiator.openrpc.json").standardized.path
        let schema = JSONValue.parse(Array(try String(contentsOfFile: schemaPath, encoding: .utf8).utf8))
        let documented = Set((schema?["methods"]?.array ?? []).compactMap { $0["name"]?.string })
        let served = Set((call("rpc_get_methods")["result"]?.array ?? []).compactMap { $0["name"]?.string })
        #expect(documented == served, "documented \(documented.sorted()), served \(served.sorted())")
    }

    /// SIGHUP's difference (`reload(to:)`): a device that cannot be connected is named and
    /// left out, a setting that needs a restart is named, an unchanged file changes nothing.
    @Test func reloadAppliesTheDifferenceAndNamesTheRest() throws {
        let (service, config) = try Self.emptyService()
        defer { service.stop() }
        #expect(service.reload(to: config).isEmpty)
        var next = config
        next.statsFile = "/tmp/vireo.prom"
        next.disks = [DiskConfig(socket: "/tmp/vireo-reload-\(getpid()).sock", target: FabricAddress(host: "127.0.0.1", port: 1), export: "vol0")]
        let notes = service.reload(to: next)
        #expect(notes.contains("stats_file or stats_interval changed: takes effect at the next restart"), "\(notes)")
        #expect(notes.contains { $0.hasPrefix("disk /tmp/vireo-reload-\(getpid()).sock: not added:") }, "\(notes)")
        #expect(service.disks.isEmpty)
    }
}
