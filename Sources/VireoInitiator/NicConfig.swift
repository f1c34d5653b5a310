import VireoFabric
import VireoWire

/// One remote NIC to serve: where the VMM connects, which target network
/// backs it, its MAC and how many queue pairs (one fabric connection each).
public struct NicConfig: Equatable, Sendable {
    /// vhost-user socket path the VMM connects to.
    public var socket: String
    /// The target's address ("10.99.0.1:4420").
    public var target: FabricAddress
    /// Network name on the target (1–23 of A-Z a-z 0-9 . _ : -).
    public var network: String
    /// The NIC's MAC address (config space).
    public var mac: MACAddress
    /// RX/TX queue pairs (MQ), each with its own connection (queue index i).
    public var queuePairs: Int
    /// Largest virtqueue size accepted (and receive/send work requests per pair).
    public var queueSize: Int
    /// The named port of the network this NIC claims (`port=vm1`; the
    /// target's config lists it, with its MAC allow-list). nil: unnamed.
    public var port: String?
    /// What the target must prove (`target_key_file`, `target_name`).
    public var targetTrust = TargetTrust()

    public static let defaultQueueSize = 256

    public init(socket: String, target: FabricAddress, network: String, mac: MACAddress, queuePairs: Int = 1,
                queueSize: Int = NicConfig.defaultQueueSize, port: String? = nil) {
        self.port = port
        self.socket = socket
        self.target = target
        self.network = network
        self.mac = mac
        self.queuePairs = queuePairs
        self.queueSize = queueSize
    }

    /// The six octets of `mac`, first octet first.
    public var macBytes: [UInt8] {
        (0..<6).map { UInt8(truncatingIfNeeded: mac.rawValue >> UInt64(40 - 8 * $0)) }
    }
}
