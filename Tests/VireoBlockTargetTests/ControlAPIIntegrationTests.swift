import Foundation
import Logging
import Testing
import VireoBlockTarget
import VireoDaemon
import VireoSys
import VireoTestSupport
import VireoWire
@testable import VireoTarget
#if canImport(Glibc)
import Glibc
#endif

/// The target's control API over its socket while it serves (#14): an export is created,
/// served, refused deletion while attached, force-deleted, and created again, while another
/// export carries verified I/O with no error; the running configuration reads back.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct ControlAPIIntegrationTests {
    let host = RDMAEnvironment.address

    static func code(_ body: () throws -> Void) -> Int? {
        do { try body() } catch let f as ControlClient.Failure {
            if case .error(let e) = f { return e.code }
        } catch {}
        return nil
    }

    @Test func exportsAreAddedAndRemovedWhileAnotherServes() throws {
        let d = try TargetIntegrationTests.daemon([TargetIntegrationTests.memory("keep", size: 16 << 20)], workers: 1)
        defer { d.stop() }
        let path = "/tmp/vireo-target-ctl-\(getpid()).sock"
        let server = try ControlServer(path: path, methods: d.controlMethods(), logger: Logger(label: "test"))
        try server.start()
        defer { server.stop() }
        let ctl = try ControlClient(path: path)
        let bystander = try HostileInitiatorTests.Bystander(host: host, port: d.port, export: "keep")
        #expect(bystander.waitForRounds(1))

        // Created at run time, and served at once.
        let made = try ctl.call("export_create", ["name": "added", "memory": true, "size": "8M", "queue_depth": 16])
        #expect(made["name"] == "added" && made["capacity"] == .int(8 << 20) && made["state"] == "serving")
        #expect(try ctl.call("export_list").array?.compactMap { $0["name"]?.string } == ["keep", "added"])
        let client = try BlockTestClient(host: host, port: d.port, name: "added", hostName: "compute-9", dataBytes: 4 << 20)
        try TargetIntegrationTests.writeReadPattern(client, bytes: 1 << 20)
        #expect(try ctl.call("export_list", ["name": "added"]).array?.first?["queues"] == 1)

        // Resized: only file exports grow online; the bystander's I/O goes on meanwhile
        // (a file export's grow-with-connections is proven with an initiator in
        // RemoteDiskIntegrationTests.exportResizeReachesTheGuestOnline).
        #expect(Self.code { _ = try ctl.call("export_resize", ["name": "added", "size": "16M"]) } == -32004)
        let file = "/tmp/vireo-target-ctl-\(getpid()).img"
        unlink(file)
        defer { unlink(file) }
        _ = try ctl.call("export_create", ["name": "grown", "file": .string(file), "size": "4M"])
        #expect(Self.code { _ = try ctl.call("export_resize", ["name": "grown", "size": "2M"]) } == -32602)
        let grown = try ctl.call("export_resize", ["name": "grown", "size": "12M"])
        #expect(grown["capacity"] == .int(12 << 20) && grown["state"] == "serving")
        #expect(try ctl.call("export_list", ["name": "grown"]).array?.first?["capacity"] == .int(12 << 20))
        var st = stat()
        #expect(stat(file, &st) == 0 && st.st_size == 12 << 20, "the file grew")
        _ = try ctl.call("export_delete", ["name": "grown"])

        // Bad requests are refused with what is wrong, and change nothing.
        #expect(Self.code { _ = try ctl.call("export_create", ["name": "added", "memory": true, "size": "1M"]) } == -32002)
        #expect(Self.code { _ = try ctl.call("export_create", ["name": "x", "memory": true]) } == -32602)
        #expect(Self.code { _ = try ctl.call("export_create", ["name": "y", "device": "/dev/no-such-device"]) } == -32004)
        #expect(Self.code { _ = try ctl.call("export_delete", ["name": "nope"]) } == -32001)

        // The running configuration lists what is served now, and reads back.
        let toml = try ctl.call("config_get")["toml"]?.string ?? ""
        let running = try TargetConfig(toml: toml)
        #expect(running.exports.map(\.name) == ["keep", "added"])
        #expect(running.exports[1].queueDepth == 16 && running.exports[1].size == 8 << 20)

        // Deleting an attached export is refused; forced, its connection is dropped and the
        // name stays taken until the connection is gone.
        #expect(Self.code { _ = try ctl.call("export_delete", ["name": "added"]) } == -32003)
        let forced = try ctl.call("export_delete", ["name": "added", "force": true])
        #expect(forced["dropped_queues"] == 1)
        #expect(throws: (any Error).self) {
            for _ in 0..<3 { _ = try client.run(.read, tag: 99, offset: 0, length: 4096, segments: [client.segment(0, 4096)]) }
        }
        var gone = false
        for _ in 0..<100 where !gone {
            gone = Self.code { _ = try ctl.call("export_list", ["name": "added"]) } == -32001
            if !gone { usleep(100_000) }
        }
        #expect(gone, "the forced export's connection drained")
        #expect(d.counters.droppedConnections == 0, "a forced delete is an orderly drop, not a fault")
        _ = try ctl.call("export_create", ["name": "added", "memory": true, "size": "4M"])
        let again = try BlockTestClient(host: host, port: d.port, name: "added", hostName: "compute-9", dataBytes: 2 << 20)
        try TargetIntegrationTests.writeReadPattern(again, bytes: 512 << 10)
        #expect(try ctl.call("version_get")["daemon"] == "vireo-target")
        // docs/api.openrpc.json describes exactly the methods the target serves.
        let schemaPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../docs/api.openrpc.json").standardized.path
        let schema = JSONValue.parse(Array(try String(contentsOfFile: schemaPath, encoding: .utf8).utf8))
        let documented = Set((schema?["methods"]?.array ?? []).compactMap { $0["name"]?.string })
        let served = Set((try ctl.call("rpc_get_methods").array ?? []).compactMap { $0["name"]?.string })
        #expect(documented == served, "documented \(documented.sorted()), served \(served.sorted())")
        let metrics = try ctl.call("stats_get")["metrics"]?.array ?? []
        #expect(metrics.contains { $0["name"] == "vireo_target_commands_total" && $0["labels"]?["opcode"] == "read" })
        // The same counters for Prometheus, over HTTP, valid for promtool.
        let http = try #require(try MetricsServer.started(at: "127.0.0.1:0", logger: Logger(label: "test")) { d.statsSnapshot() })
        defer { http.stop() }
        let scrape = try httpRequest(port: http.port, path: "/metrics")
        #expect(scrape.status == 200 && scrape.body.contains("vireo_target_commands_total{opcode=\"read\"}"))
        #expect(scrape.body.contains("vireo_target_export_commands_total{export=\"keep\",kind=\"write\"}"), "per-export counters")
        #expect(scrape.body.contains("vireo_target_export_command_latency_seconds_bucket{export=\"keep\",le=\"+Inf\"}"), "per-export latency")
        if let check = try promtoolCheck(scrape.body) { #expect(check.ok, "promtool: \(check.output)") }

        #expect(bystander.waitForRounds(1))
        let (rounds, errors) = bystander.stop()
        #expect(errors.isEmpty, "\(errors)")
        print("control API: bystander did \(rounds) verified rounds through create, delete and re-create")
    }

    /// host_add / host_remove (issue #14): the known hosts change at run time, new
    /// connections follow the change, and an endpoint's implicit rule is what a restart from
    /// config_get would give (open while no host is known, closed once one is).
    @Test func hostsAreAddedAndRemovedAtRunTime() throws {
        let d = try TargetIntegrationTests.daemon([TargetIntegrationTests.memory("open", size: 4 << 20)], workers: 1)
        defer { d.stop() }
        let path = "/tmp/vireo-target-hosts-\(getpid()).sock"
        let server = try ControlServer(path: path, methods: d.controlMethods(), logger: Logger(label: "test"))
        try server.start()
        defer { server.stop() }
        let ctl = try ControlClient(path: path)
        func connects(_ export: String, as host: String) -> Bool {
            (try? BlockTestClient(host: self.host, port: d.port, name: export, hostName: host, dataBytes: 1 << 20)) != nil
        }
        #expect(try ctl.call("host_list") == .array([]))
        #expect(connects("open", as: "compute-9"), "no host known: an endpoint without a rule is open")

        let added = try ctl.call("host_add", ["name": "compute-1"])
        #expect(added["authenticated"] == false)
        #expect(Self.code { _ = try ctl.call("host_add", ["name": "compute-1"]) } == -32002)
        #expect(Self.code { _ = try ctl.call("host_add", ["name": "compute-2", "key_file": "/nonexistent/key"]) } == -32004)
        #expect(!connects("open", as: "compute-9"), "a host is known now: the endpoint without a rule admits none")
        _ = try ctl.call("export_create", ["name": "mine", "memory": true, "size": "4M", "allowed_hosts": ["compute-1"]])
        #expect(connects("mine", as: "compute-1"))
        #expect(!connects("mine", as: "compute-9"))
        #expect(try ctl.call("host_list", ["name": "compute-1"]).array?.first?["allowed_on"] == ["export mine"])
        let running = try TargetConfig(toml: try ctl.call("config_get")["toml"]?.string ?? "")
        #expect(running.hosts.map(\.name) == ["compute-1"])

        #expect(Self.code { _ = try ctl.call("host_remove", ["name": "compute-1"]) } == -32003, "allowed by export mine")
        _ = try ctl.call("export_delete", ["name": "mine", "force": true])
        for _ in 0..<100 where Self.code({ _ = try ctl.call("export_list", ["name": "mine"]) }) != -32001 { usleep(100_000) }
        #expect(try ctl.call("host_remove", ["name": "compute-1"])["state"] == "removed")
        #expect(Self.code { _ = try ctl.call("host_remove", ["name": "compute-1"]) } == -32001)
        #expect(connects("open", as: "compute-9"), "no host known again: open again")
    }
}
