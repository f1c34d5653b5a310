import VireoBlockTarget
import VireoDaemon
import VireoPacketTarget

extension TargetConfig {
    /// Parses a TOML document:
    ///
    /// ```toml
    /// listen = "10.99.0.1:4420"
    /// workers = 2
    /// busy_poll = false
    /// shared_receives = 1024   # receive buffers each worker shares among its block connections (0: per connection)
    /// stats_file = "/run/vireo/target.prom"  # optional; counters, Prometheus text format
    /// control_socket = "/run/vireo/target.sock"  # optional; the control API (docs/api.md)
    /// control_socket_mode = 0o600
    /// metrics_listen = "127.0.0.1:9464"  # optional; Prometheus /metrics over HTTP
    /// stats_interval = 10
    /// keepalive = 5        # seconds idle and silent before a block connection's peer is probed
    /// peer_timeout = 15    # seconds without a completion, work posted, before the peer counts as gone
    /// name = "storage-1"   # the target's name in handshakes (default "vireo-target:" + host name)
    /// key_file = "/etc/vireo/target.key"   # optional: the target proves itself with it (gen-key)
    /// handshake_timeout = 5                # seconds a connection has to send its hello
    /// max_connections_per_host = 256       # block queues + packet queue pairs one host may hold
    /// max_memory_per_host = "4G"           # registered buffers one host's connections may hold
    /// [[host]]                             # hosts the target knows; with any, endpoints deny by default
    /// name = "compute-1"
    /// key_file = "/etc/vireo/hosts/compute-1.key"   # the target's copy of the host's secret
    /// [[export]]
    /// name = "vol0"
    /// file = "/var/lib/vireo/vol0.img"   # or device = "/dev/...", or memory = true
    /// size = "1G"
    /// block_size = 512
    /// read_only = false
    /// max_queues = 16
    /// max_queues_per_host = 16
    /// queue_depth = 128
    /// max_io = "1M"
    /// max_segments = 128
    /// inline_max = 4096
    /// allowed_hosts = ["compute-1"]        # or allow_any_host = true
    /// [[ceph_cluster]]                     # RBD exports' cluster (docs/ceph.md)
    /// name = "ceph"
    /// conf = "/etc/ceph/ceph.conf"
    /// client = "vireo"                     # cephx user (client.vireo)
    /// keyring = "/etc/ceph/ceph.client.vireo.keyring"
    /// images_per_connection = 8
    /// [[export]]
    /// name = "db0"
    /// rbd = "rbd/db0"                      # pool/[namespace/]image[@snapshot: read-only]
    /// ceph_cluster = "ceph"                # optional with one cluster
    /// io_timeout = 30                      # seconds before a stuck cluster fails the guest's I/O
    /// [[network]]
    /// name = "lan0"
    /// mtu = 1500
    /// tap = "vireo-lan0"                    # optional uplink
    /// allowed_macs = ["52:54:00:12:34:56"]  # optional
    /// aging = 300
    /// ```
    ///
    /// Unknown keys and wrong types are problems; every problem is reported,
    /// one line each. The result is validated.
    public init(toml text: String) throws(ConfigError) {
        let r = try TOMLTableReader(toml: text)
        var config = TargetConfig()
        if let s = r.string("listen", what: "a string \"host:port\"") { config.listen = s }
        if let n = r.int("workers") { config.workers = n }
        if let b = r.bool("busy_poll") { config.busyPoll = b }
        if let n = r.int("shared_receives") { config.sharedReceives = n }
        config.statsFile = r.string("stats_file", what: "a path")
        config.controlSocket = r.string("control_socket", what: "a path")
        config.metricsListen = r.string("metrics_listen", what: "an address \"127.0.0.1:9464\"")
        if let n = r.int("control_socket_mode") { config.controlSocketMode = n }
        config.statsIntervalSeconds = r.number("stats_interval", what: "a positive number of seconds") { $0 > 0 }
        if let d = r.number("keepalive", what: "a number of seconds") { config.keepaliveSeconds = d }
        if let d = r.number("peer_timeout", what: "a number of seconds") { config.peerTimeoutSeconds = d }
        config.name = r.string("name", what: "a name")
        config.keyFile = r.string("key_file", what: "a path")
        if let d = r.number("handshake_timeout", what: "a number of seconds") { config.handshakeTimeoutSeconds = d }
        if let n = r.int("max_connections_per_host") { config.maxConnectionsPerHost = n }
        if let n = r.byteCount("max_memory_per_host") { config.maxMemoryPerHost = n }
        config.hosts = r.tables("host").compactMap { HostConfig(reading: $0) }
        config.exports = r.tables("export").compactMap { ExportConfig(reading: $0) }
        config.cephClusters = r.tables("ceph_cluster").compactMap { CephClusterConfig(reading: $0) }
        config.networks = r.tables("network").compactMap { NetworkConfig(toml: $0) }
        self = try r.result(config)
        try validate()
    }
}
