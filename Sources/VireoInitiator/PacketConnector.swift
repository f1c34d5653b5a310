import VireoAuth
import VireoFabric
import VireoWire

/// Opens one queue pair's connection to a target network (packet endpoint):
/// the connect request (network, queue-pair index, initial receive credits,
/// SGEs per frame, largest frame), the accept's `PacketGeometry`, the
/// reject's message.
struct PacketConnector: EndpointConnector {
    typealias Grant = PacketGeometry
    let config: NicConfig
    let credentials: CredentialSource
    /// The switch port every pair of this NIC claims: its named port, or for
    /// several pairs a random key (one port on the target, not one per pair).
    let portKey: PortKey?
    /// SGEs per transmitted frame (guest descriptors gathered by one SEND).
    static let maxSendSegments = 16
    /// SGEs per receive work request (guest RX descriptors one frame may fill).
    static let maxReceiveSegments = 8
    /// Credit-only SENDs that may be in flight at once.
    static let creditMessageSlots = 4
    /// Largest frame asked for: header + Ethernet header + 9216-byte MTU + VLAN tag.
    static let wantedFrameBytes = PacketGeometry.maxFrameBytes(mtu: 9216)

    init(config: NicConfig, credentials: CredentialSource) {
        self.config = config
        self.credentials = credentials
        if let name = config.port {
            portKey = .named(name)
        } else {
            portKey = config.queuePairs > 1 ? PortKey.random() : nil
        }
    }

    var target: FabricAddress { config.target }
    var endpointDescription: String { "network \(config.network)" }
    var queuePairConfig: QueuePairConfig { Self.queuePairConfig(queueSize: config.queueSize) }

    /// The queue pair shape: a send per TX ring slot plus credit messages and
    /// the handshake's hello, a receive per RX ring slot.
    static func queuePairConfig(queueSize: Int) -> QueuePairConfig {
        QueuePairConfig(sendDepth: queueSize + creditMessageSlots + 1, receiveDepth: queueSize,
                        maxSendSegments: maxSendSegments, maxReceiveSegments: maxReceiveSegments,
                        maxInlineData: 0, readDepth: 0)  // nothing RDMA-READs a NIC: no responder resources
    }

    /// The connect request; its queue depth is the initial credits (0 before
    /// the guest posted a receive buffer).
    func request(queue: Int, initialCredits: Int) -> ConnectRequest {
        ConnectRequest(kind: .packet, name: config.network, queueIndex: UInt16(queue),
                       queueDepth: UInt16(clamping: max(0, initialCredits)), maxSegments: UInt16(Self.maxSendSegments),
                       maxIOBytes: Self.wantedFrameBytes, hostID: credentials.hostID, wantsWrite: false, port: portKey)
    }
}
