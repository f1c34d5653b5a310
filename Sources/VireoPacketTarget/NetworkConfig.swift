import VireoDaemon
import VireoWire

/// One packet endpoint: a named L2 network whose ports are initiator
/// virtio-net queue pairs (and optionally a TAP uplink on the target host).
///
/// From TOML (`[[network]]`, parsed by `TargetConfig(toml:)` through
/// `NetworkConfig(table:)`), from `--network` (`NetworkConfig(flag:)`), or in code.
public struct NetworkConfig: Equatable, Sendable {
    /// What initiators connect to (1-23 of A-Z a-z 0-9 . _ : -).
    public var name: String
    /// Largest Ethernet payload (68-65535).
    public var mtu: Int = 1500
    /// TAP interface created on the target and attached as an uplink port (nil: none).
    public var tap: String?
    /// Source MACs ports may use (nil: any). Frames from other sources are dropped and counted.
    /// The TAP uplink is not subject to it. A named port's own list applies on top of it.
    public var allowedMACs: [MACAddress]?
    /// Seconds a learned MAC stays valid without traffic from it.
    public var agingSeconds: Int = 300
    /// Receive buffers the target posts per port (the initiator's initial credits).
    public var receiveBuffers: Int = 256
    /// Ports (connections) this network accepts.
    public var maxPorts: Int = 64
    /// MAC table entries.
    public var macTableSize: Int = 4096
    /// Named ports (empty: any initiator may connect, unnamed). When ports
    /// are listed, a NIC must claim one of them (`port=NAME` in its `--nic`).
    public var ports: [PortConfig] = []
    /// Which hosts may join this network (`allowed_hosts`, `allow_any_host`).
    public var access = EndpointAccessConfig()

    public init(name: String, mtu: Int = 1500, tap: String? = nil, allowedMACs: [MACAddress]? = nil,
                agingSeconds: Int = 300) {
        self.name = name
        self.mtu = mtu
        self.tap = tap
        self.allowedMACs = allowedMACs
        self.agingSeconds = agingSeconds
    }

    /// Largest SEND payload on this network: 12 + 14 + MTU + 4.
    public var maxFrameBytes: Int { Wire.netHeaderSize + Wire.ethernetHeaderSize + mtu + Wire.vlanTagSize }

    /// Every problem, one line each (empty: valid).
    public func problems() -> [String] {
        var out: [String] = []
        let who = "network '\(name)'"
        if !ConnectRequest.isValidName(name) { out.append("\(who): name must be 1-23 characters of A-Z a-z 0-9 . _ : -") }
        if mtu < Int(PacketGeometry.minMTU) || mtu > Int(PacketGeometry.maxMTU) {
            out.append("\(who): mtu \(mtu) must be \(PacketGeometry.minMTU)-\(PacketGeometry.maxMTU)")
        }
        if let tap, tap.isEmpty || tap.utf8.count > 15 || tap.contains("/") || tap.contains(" ") {
            out.append("\(who): tap '\(tap)' must be an interface name of 1-15 characters")
        }
        if let allowedMACs, allowedMACs.contains(where: { $0.isMulticast || $0.isZero }) {
            out.append("\(who): allowed_macs must be unicast, nonzero addresses")
        }
        if agingSeconds < 1 || agingSeconds > 86_400 { out.append("\(who): aging \(agingSeconds) must be 1-86400 seconds") }
        if receiveBuffers < 1 || receiveBuffers > Wire.maxQueueDepthLimit {
            out.append("\(who): receive_buffers \(receiveBuffers) must be 1-\(Wire.maxQueueDepthLimit)")
        }
        if maxPorts < 1 || maxPorts > 1023 { out.append("\(who): max_ports \(maxPorts) must be 1-1023") }
        if macTableSize < 16 || macTableSize > 1 << 20 { out.append("\(who): mac_table_size must be 16-1048576") }
        var seen = Set<String>()
        for p in ports {
            out += p.problems(network: name)
            if !seen.insert(p.name).inserted { out.append("\(who): port '\(p.name)' is listed twice") }
        }
        if ports.count > maxPorts { out.append("\(who): \(ports.count) ports listed, max_ports is \(maxPorts)") }
        return out
    }
}
