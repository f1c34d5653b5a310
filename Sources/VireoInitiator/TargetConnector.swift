import VireoAuth
import VireoFabric
import VireoWire

/// Opens one queue's connection to a block target: the connect request (export,
/// queue index, what we want), the accept's geometry, the reject's message.
struct TargetConnector: EndpointConnector {
    typealias Grant = BlockGeometry
    let config: DiskConfig
    let credentials: CredentialSource
    /// Segments per command asked for.
    static let wantedSegments: UInt16 = 128
    /// Data bytes per command asked for.
    static let wantedIOBytes: UInt32 = 1 << 20
    /// Guest pieces an inline WRITE may gather (send SGEs besides the capsule header).
    static let inlinePieces = 4

    init(config: DiskConfig, credentials: CredentialSource) {
        self.config = config
        self.credentials = credentials
    }

    /// The queue pair shape for `slots` request slots.
    static func queuePairConfig(slots: Int) -> QueuePairConfig {
        // One send beyond the slots: the handshake's hello, whose completion the engine reaps and ignores.
        QueuePairConfig(sendDepth: slots + 1, receiveDepth: slots, maxSendSegments: 1 + inlinePieces,
                        maxReceiveSegments: 1, maxInlineData: 0, readDepth: 16)
    }

    var target: FabricAddress { config.target }
    var endpointDescription: String { "export \(config.export)" }
    var queuePairConfig: QueuePairConfig { Self.queuePairConfig(slots: config.queueDepth) }

    func request(queue: Int, initialCredits: Int = 0) -> ConnectRequest {
        ConnectRequest(kind: .block, name: config.export, queueIndex: UInt16(queue),
                       queueDepth: UInt16(config.queueDepth), maxSegments: Self.wantedSegments,
                       maxIOBytes: Self.wantedIOBytes, hostID: credentials.hostID, wantsWrite: !config.readOnly)
    }
}
