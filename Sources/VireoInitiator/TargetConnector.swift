import VireoFabric
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// Opens one queue's connection to a block target: the connect request (export,
/// queue index, what we want), the accept's geometry, the reject's message.
struct TargetConnector: EndpointConnector {
    typealias Grant = BlockGeometry
    let config: DiskConfig
    let hostID: [UInt8]
    /// Segments per command asked for.
    static let wantedSegments: UInt16 = 128
    /// Data bytes per command asked for.
    static let wantedIOBytes: UInt32 = 1 << 20
    /// Guest pieces an inline WRITE may gather (send SGEs besides the capsule header).
    static let inlinePieces = 4

    init(config: DiskConfig) {
        self.config = config
        hostID = Self.hostID()
    }

    /// The queue pair shape for `slots` request slots.
    static func queuePairConfig(slots: Int) -> QueuePairConfig {
        QueuePairConfig(sendDepth: slots, receiveDepth: slots, maxSendSegments: 1 + inlinePieces,
                        maxReceiveSegments: 1, maxInlineData: 0, readDepth: 16)
    }

    var target: FabricAddress { config.target }
    var endpointDescription: String { "export \(config.export)" }
    var queuePairConfig: QueuePairConfig { Self.queuePairConfig(slots: config.queueDepth) }

    func request(queue: Int, initialCredits: Int = 0) -> ConnectRequest {
        ConnectRequest(kind: .block, name: config.export, queueIndex: UInt16(queue),
                       queueDepth: UInt16(config.queueDepth), maxSegments: Self.wantedSegments,
                       maxIOBytes: Self.wantedIOBytes, hostID: hostID, wantsWrite: !config.readOnly)
    }

    /// 16 bytes identifying this host in the target's logs: FNV-1a of the host name, twice.
    static func hostID() -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 256)
        _ = buf.withUnsafeMutableBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { gethostname($0.baseAddress!, 255) }
        }
        let name = Array(buf.prefix { $0 != 0 })
        var out: [UInt8] = []
        for seed: UInt64 in [0xcbf2_9ce4_8422_2325, 0x84222325cbf29ce4] {
            var h = seed
            for b in name { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            withUnsafeBytes(of: h.littleEndian) { out.append(contentsOf: $0) }
        }
        return out
    }
}
