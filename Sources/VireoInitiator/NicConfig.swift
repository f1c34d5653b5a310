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

/// The fields of one NIC before validation (shared by `--nic` and TOML).
struct NicFields {
    var socket: String?
    var target: String?
    var network: String?
    var mac: String?
    var queuePairs: Int?
    var queueSize: Int?
    var port: String?
    /// Keys already reported (e.g. wrong type): not reported again as missing.
    var reported: Set<String> = []

    /// Validates; appends one line per problem to `problems` (prefixed with `context`).
    func validated(context: String, problems: inout [String]) -> NicConfig? {
        var bad = false
        func problem(_ s: String) { problems.append("\(context): \(s)"); bad = true }
        if socket?.isEmpty ?? true, !reported.contains("socket") { problem("socket is missing (e.g. socket=/run/vireo/vm1-net0.sock)") }
        var address: FabricAddress?
        if let t = target {
            do throws(FabricError) { address = try FabricAddress(parsing: t) } catch { problem("target '\(t)': \(error)") }
        } else if !reported.contains("target") {
            problem("target is missing (e.g. target=10.99.0.1:4420)")
        }
        if let n = network {
            if !ConnectRequest.isValidName(n) { problem("network '\(n)' must be 1-23 characters of A-Z a-z 0-9 . _ : -") }
        } else if !reported.contains("network") {
            problem("network is missing (e.g. network=lan0)")
        }
        var macAddress: MACAddress?
        if let m = mac {
            if let a = MACAddress(m) {
                if a.isMulticast { problem("mac \(m) is a multicast address (the first octet must be even)") }
                else if a.isZero { problem("mac \(m) is all zero") }
                else { macAddress = a }
            } else {
                problem("mac '\(m)' is not six hex octets such as 52:54:00:00:00:01")
            }
        } else if !reported.contains("mac") {
            problem("mac is missing (e.g. mac=52:54:00:00:00:01)")
        }
        let pairs = queuePairs ?? 1
        if !(1...32).contains(pairs) { problem("queue-pairs must be 1...32, not \(pairs)") }
        let size = queueSize ?? NicConfig.defaultQueueSize
        if !(16...1024).contains(size) || size & (size - 1) != 0 {
            problem("queue-size must be a power of two in 16...1024, not \(size)")
        }
        if let port, !PortKey.isValidName(port) { problem("port '\(port)' must be 1-15 characters of A-Z a-z 0-9 . _ -") }
        guard !bad, reported.isEmpty, let socket, let address, let network, let macAddress else { return nil }
        return NicConfig(socket: socket, target: address, network: network, mac: macAddress, queuePairs: pairs,
                         queueSize: size, port: port)
    }
}
