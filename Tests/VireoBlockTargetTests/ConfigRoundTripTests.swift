import Testing
import VireoBlockTarget
import VireoDaemon
import VireoPacketTarget
import VireoTarget
import VireoWire

/// `config_get` prints the running configuration as TOML; reading that text back gives the
/// same configuration, and an export given as control-API parameters reads as the same
/// `[[export]]` table would (#14: the file and the API agree).
@Suite struct ConfigRoundTripTests {
    static let rich = """
        listen = "10.99.0.1:4420"
        workers = 3
        busy_poll = true
        shared_receives = 512
        stats_file = "/run/vireo/target.prom"
        stats_interval = 2.5
        keepalive = 3
        peer_timeout = 12.5
        name = "storage-1"
        key_file = "/etc/vireo/target.key"
        handshake_timeout = 4
        max_connections_per_host = 9
        max_memory_per_host = "2G"
        control_socket = "/run/vireo/target.sock"
        control_socket_mode = 0o660

        [[host]]
        name = "compute-1"
        key_files = ["/etc/vireo/hosts/c1.key", "/etc/vireo/hosts/c1.new.key"]

        [[host]]
        name = "compute-2"

        [[export]]
        name = "vol0"
        file = "/var/lib/vireo/vol \\"zero\\".img"
        size = "1G"
        block_size = 4096
        read_only = false
        max_queues = 8
        max_queues_per_host = 4
        queue_depth = 64
        max_io = "512K"
        max_segments = 32
        inline_max = 2048
        allowed_hosts = ["compute-1"]

        [[export]]
        name = "ram"
        memory = true
        size = 67108864
        allow_any_host = true

        [[ceph_cluster]]
        name = "ceph-a"
        conf = "/etc/ceph/a.conf"
        client = "vireo"
        keyring = "/etc/ceph/ceph.client.vireo.keyring"
        images_per_connection = 4

        [[ceph_cluster]]
        name = "ceph-b"

        [[export]]
        name = "db0"
        rbd = "rbd/tenant1/db0"
        ceph_cluster = "ceph-a"
        io_timeout = 45

        [[export]]
        name = "db0-monday"
        rbd = "rbd/db0@monday"
        ceph_cluster = "ceph-b"

        [[export]]
        name = "disk"
        device = "/dev/nvme0n1"
        read_only = true
        allowed_hosts = ["compute-1", "compute-2"]

        [[network]]
        name = "lan0"
        mtu = 9000
        tap = "vtap0"
        aging = 60
        max_ports = 8
        allowed_macs = ["52:54:00:00:0a:01"]
        allowed_hosts = ["compute-2"]

        [[network.port]]
        name = "vm1"
        allowed_macs = ["52:54:00:00:0a:01"]
        hosts = ["compute-2"]
        """

    @Test func theRunningConfigurationReadsBackEqual() throws {
        let c = try TargetConfig(toml: Self.rich)
        let text = c.tomlText
        let again = try TargetConfig(toml: text)
        #expect(again == c, "\(text)")
        var bare = TargetConfig()
        bare.controlSocket = "/run/vireo/target.sock"  // nothing to serve yet: exports come through the API
        #expect(try TargetConfig(toml: bare.tomlText) == bare)
        #expect(text.contains("control_socket_mode = 0o660"))
    }

    @Test func anExportFromParamsEqualsTheSameTable() throws {
        let toml = try TargetConfig(toml: """
            [[export]]
            name = "vol9"
            file = "/srv/vol9.img"
            size = "64M"
            read_only = true
            queue_depth = 32
            max_io = "256K"
            allow_any_host = true
            """).exports[0]
        let r = JSONParamsReader(["name": "vol9", "file": "/srv/vol9.img", "size": "64M", "read_only": true,
                                  "queue_depth": 32, "max_io": 262144, "allow_any_host": true])
        let json = ExportConfig(reading: r)
        #expect(r.finish().isEmpty)
        #expect(json == toml)
    }

    @Test func paramsOfTheWrongTypeSayWhatWasExpectedAndFound() {
        let r = JSONParamsReader(["name": 3, "memory": "yes", "size": -1, "colour": "red"])
        _ = ExportConfig(reading: r)
        let problems = r.finish()
        #expect(problems.contains("params: name must be a string, not a number"))
        #expect(problems.contains("params: memory must be true or false, not a string"))
        #expect(problems.contains { $0.hasPrefix("params: size must be a byte count") })
        #expect(problems.contains { $0.hasPrefix("params: unknown parameter 'colour'") })
        #expect(JSONParamsReader("just a string").finish() == ["params must be an object, not a string"])
    }

    @Test func aControlSocketModeWithoutTheOwnersBitsIsRefused() {
        var c = TargetConfig()
        c.controlSocketMode = 0o066
        #expect(c.problems().contains { $0.contains("control_socket_mode 66") })
    }
}
