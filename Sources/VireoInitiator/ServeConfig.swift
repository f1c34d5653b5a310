import VireoDaemon
import VireoWire

/// Everything `vireo-initiator serve` serves: remote disks and remote NICs.
public struct ServeConfig: Equatable, Sendable {
    public var disks: [DiskConfig]
    public var nics: [NicConfig]
    /// Where the daemon writes its counters (Prometheus text format), if anywhere (`stats_file`).
    public var statsFile: String?
    /// Seconds between stats file writes (`stats_interval`).
    public var statsIntervalSeconds: Double?
    /// Where Prometheus scrapes the counters over HTTP (`metrics_listen`), if anywhere.
    public var metricsListen: String?
    /// This host's name in handshakes (`host_name`; default: the machine's host name).
    public var hostName: String?
    /// This host's secret (`host_key_file`; gen-key): targets that know it check this host's proof.
    public var hostKeyFile: String?
    /// The control API's UNIX socket (JSON-RPC 2.0, docs/api.md; `control_socket`), if any:
    /// disks and NICs added and removed at run time.
    public var controlSocket: String?
    /// Permission bits of the control socket (`control_socket_mode`, default 0o600).
    public var controlSocketMode = 0o600

    public init(disks: [DiskConfig] = [], nics: [NicConfig] = []) {
        self.disks = disks
        self.nics = nics
    }

    /// Parses a TOML configuration with `[[disk]]` and `[[nic]]` tables (at
    /// least one of them). `source` names the file in messages.
    public static func parse(toml text: String, source: String = "config") throws(ConfigError) -> ServeConfig {
        let r = try TOMLTableReader(toml: text, source: source)
        var out = ServeConfig(disks: r.tables("disk").compactMap { DiskConfig(reading: $0) },
                              nics: r.tables("nic").compactMap { NicConfig(reading: $0) })
        out.statsFile = r.string("stats_file", what: "a path")
        out.statsIntervalSeconds = r.number("stats_interval", what: "a positive number of seconds") { $0 > 0 }
        out.metricsListen = r.string("metrics_listen", what: "an address \"127.0.0.1:9465\"")
        if let m = out.metricsListen, !MetricsServer.isValidAddress(m) {
            r.problem("metrics_listen '\(m)' must be a numeric address and port, e.g. 127.0.0.1:9465 or [::1]:9465")
        }
        out.hostName = r.string("host_name", what: "a name")
        out.hostKeyFile = r.string("host_key_file", what: "a path")
        out.controlSocket = r.string("control_socket", what: "a path")
        if let n = r.int("control_socket_mode") { out.controlSocketMode = n }
        return try r.result(out)
    }

    /// Problems across devices (a socket used twice; nothing configured), one line each.
    public func checkUnique() throws(ConfigError) {
        var seen: Set<String> = []
        var problems: [String] = []
        for s in disks.map(\.socket) + nics.map(\.socket) where !seen.insert(s).inserted {
            problems.append("socket \(s) is used by more than one device")
        }
        var macs: Set<UInt64> = []
        for n in nics where !macs.insert(n.mac.rawValue).inserted {
            problems.append("mac \(n.mac) is used by more than one nic")
        }
        if disks.isEmpty && nics.isEmpty && controlSocket == nil {
            problems.append("nothing configured: give --disk, --nic or --config (with [[disk]] or [[nic]] tables), or a control socket to add them at run time")
        }
        if controlSocketMode < 0 || controlSocketMode > 0o777 || controlSocketMode & 0o600 != 0o600 {
            problems.append("control_socket_mode \(String(controlSocketMode, radix: 8)) must be 0o600-0o777 with the owner's read and write bits")
        }
        if let c = controlSocket, c.utf8.count > 107 { problems.append("control_socket '\(c)' is longer than a socket path may be (107 bytes)") }
        if let hostName, !HandshakeName.isValid(hostName) { problems.append(HandshakeName.rule(for: "host_name '\(hostName)'")) }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
    }
}
