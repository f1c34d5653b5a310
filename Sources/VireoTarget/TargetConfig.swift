import VireoBlockTarget
import VireoDaemon
import VireoPacketTarget
import VireoWire

/// The target daemon's configuration: where it listens, how many workers, its
/// exports (block endpoints) and its networks (packet endpoints).
///
/// Built from TOML (`TargetConfig(toml:)`), from command-line flags
/// (`ExportConfig(flag:)`), or in code; `validate()` reports every problem.
public struct TargetConfig: Equatable, Sendable {
    /// "host:port" of an address on the RDMA netdev.
    public var listen: String = "0.0.0.0:4420"
    /// Worker threads moving data (each owns a CQ, a completion channel and an io_uring).
    public var workers = 2
    /// Spin on the CQs and io_uring instead of sleeping (dedicated cores only).
    public var busyPoll = false
    /// Receive buffers each worker shares between all its block connections (a shared receive
    /// queue), so receive memory does not grow with connections; 0: every connection posts
    /// `queue_depth` buffers of its own (TOML `shared_receives`, default 1024). Connections
    /// whose largest command does not fit a shared buffer, or a device without shared receive
    /// queues, get their own.
    public var sharedReceives = 1024
    public var exports: [ExportConfig] = []
    /// Ceph clusters RBD exports live in (`[[ceph_cluster]]`).
    public var cephClusters: [CephClusterConfig] = []
    /// Packet endpoints: named L2 networks.
    public var networks: [NetworkConfig] = []
    /// The control API's UNIX socket (JSON-RPC 2.0, docs/api.md; TOML `control_socket`), if any.
    public var controlSocket: String?
    /// Permission bits of the control socket (TOML `control_socket_mode`, default 0o600: the
    /// daemon's user only; 0o660 lets its group manage it too).
    public var controlSocketMode = 0o600
    /// Where Prometheus scrapes the counters over HTTP (`metrics_listen = "127.0.0.1:9464"`;
    /// a numeric address and port), if anywhere.
    public var metricsListen: String?
    /// Where the daemon writes its counters (Prometheus text format), if anywhere.
    public var statsFile: String?
    /// Seconds between stats file writes (default 10).
    public var statsIntervalSeconds: Double?
    /// Seconds a block connection may be idle and silent before the target probes its peer
    /// (a zero-length RDMA WRITE; TOML `keepalive`, default 5).
    public var keepaliveSeconds: Double = 5
    /// Seconds without any completion, while work or a probe is posted to the peer, after
    /// which the peer counts as vanished and its connection is dropped (TOML `peer_timeout`, default 15).
    public var peerTimeoutSeconds: Double = 15
    /// The target's name in every accept, covered by both handshake proofs (TOML `name`;
    /// default "vireo-target:" and the machine's host name).
    public var name: String?
    /// The target's own secret (`gen-key`): with it the target proves itself to initiators (TOML `key_file`).
    public var keyFile: String?
    /// The hosts the target knows (TOML `[[host]]`). With none, every endpoint that does not
    /// say otherwise admits any host, with a warning; with any, endpoints admit only the
    /// hosts they list (`allowed_hosts`) unless they set `allow_any_host`.
    public var hosts: [HostConfig] = []
    /// Seconds a new connection has to send its handshake hello (TOML `handshake_timeout`, default 5).
    public var handshakeTimeoutSeconds: Double = 5
    /// Connections (block queues and packet queue pairs) one host may hold on this target at
    /// once, counted by the connect request's host id, which the handshake then checks
    /// (TOML `max_connections_per_host`, default 256).
    public var maxConnectionsPerHost = 256
    /// Registered target memory (receive, bounce and send buffers) one host's connections may
    /// hold at once, in bytes (TOML `max_memory_per_host`, default 4G).
    public var maxMemoryPerHost = 4 << 30

    public init(listen: String = "0.0.0.0:4420", workers: Int = 2, busyPoll: Bool = false, exports: [ExportConfig] = [],
                networks: [NetworkConfig] = []) {
        self.listen = listen
        self.workers = workers
        self.busyPoll = busyPoll
        self.exports = exports
        self.networks = networks
    }

    /// Every problem, one line each (empty: valid).
    public func problems() -> [String] {
        var out: [String] = []
        if workers < 1 || workers > 64 { out.append("workers \(workers) must be 1-64") }
        if controlSocketMode < 0 || controlSocketMode > 0o777 || controlSocketMode & 0o600 != 0o600 {
            out.append("control_socket_mode \(String(controlSocketMode, radix: 8)) must be 0o600-0o777 with the owner's read and write bits")
        }
        if let m = metricsListen, !MetricsServer.isValidAddress(m) {
            out.append("metrics_listen '\(m)' must be a numeric address and port, e.g. 127.0.0.1:9464 or [::1]:9464")
        }
        if let c = controlSocket, c.utf8.count > 107 { out.append("control_socket '\(c)' is longer than a socket path may be (107 bytes)") }
        if sharedReceives < 0 || sharedReceives > 16384 { out.append("shared_receives \(sharedReceives) must be 0-16384") }
        if !(keepaliveSeconds >= 0.01 && keepaliveSeconds <= 3600) { out.append("keepalive \(keepaliveSeconds) must be 0.01-3600 seconds") }
        if !(peerTimeoutSeconds > keepaliveSeconds && peerTimeoutSeconds <= 3600) {
            out.append("peer_timeout \(peerTimeoutSeconds) must be longer than keepalive (\(keepaliveSeconds)) and at most 3600 seconds")
        }
        if !(handshakeTimeoutSeconds >= 0.1 && handshakeTimeoutSeconds <= 60) {
            out.append("handshake_timeout \(handshakeTimeoutSeconds) must be 0.1-60 seconds")
        }
        if let name, !HandshakeName.isValid(name) { out.append(HandshakeName.rule(for: "name '\(name)'")) }
        if maxConnectionsPerHost < 1 { out.append("max_connections_per_host \(maxConnectionsPerHost) must be at least 1") }
        if maxMemoryPerHost < 1 << 20 { out.append("max_memory_per_host \(maxMemoryPerHost) must be at least 1M") }
        var hostNames = Set<String>()
        for h in hosts {
            if !hostNames.insert(h.name).inserted { out.append("host '\(h.name)' is configured twice") }
            out += h.problems()
        }
        for (kind, name, access) in exports.map({ ("export", $0.name, $0.access) }) + networks.map({ ("network", $0.name, $0.access) }) {
            for h in access.allowedHosts ?? [] where !hostNames.contains(h) {
                out.append("\(kind) '\(name)': allowed host '\(h)' is not a configured [[host]]")
            }
        }
        for n in networks {
            for p in n.ports {
                for h in p.hosts ?? [] where !hostNames.contains(h) {
                    out.append("network '\(n.name)' port '\(p.name)': host '\(h)' is not a configured [[host]]")
                }
            }
        }
        if exports.isEmpty && networks.isEmpty && controlSocket == nil {
            out.append("no exports configured (add [[export]] or --export, or [[network]] or --network, or a control_socket to add them at run time)")
        }
        var clusterNames = Set<String>()
        for c in cephClusters {
            if !clusterNames.insert(c.name).inserted { out.append("ceph_cluster '\(c.name)' is configured twice") }
            out += c.problems()
        }
        var seen = Set<String>()
        for e in exports {
            if !seen.insert(e.name).inserted { out.append("export '\(e.name)' is configured twice") }
            out += e.problems()
            guard case .rbd = e.backing else { continue }
            if let c = e.cephCluster {
                if !clusterNames.contains(c) { out.append("export '\(e.name)': ceph_cluster '\(c)' is not a configured [[ceph_cluster]]") }
            } else if cephClusters.count != 1 {
                out.append("export '\(e.name)': an rbd export needs ceph_cluster = NAME (\(cephClusters.count) [[ceph_cluster]] configured)")
            }
        }
        var taps = Set<String>()
        for n in networks {
            if !seen.insert(n.name).inserted { out.append("network '\(n.name)' is configured twice (or shares an export's name)") }
            if let tap = n.tap, !taps.insert(tap).inserted { out.append("network '\(n.name)': tap '\(tap)' is used twice") }
            out += n.problems()
        }
        return out
    }

    /// Throws a `ConfigError` listing every problem.
    public func validate() throws(ConfigError) {
        let p = problems()
        if !p.isEmpty { throw ConfigError(problems: p) }
    }
}
