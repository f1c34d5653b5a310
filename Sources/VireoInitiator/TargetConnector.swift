import VireoFabric
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// Opens one queue's connection to a block target: the connect request (export,
/// queue index, what we want), the accept's geometry, the reject's message.
struct TargetConnector: EndpointConnector {
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

    func request(queue: Int) -> ConnectRequest {
        ConnectRequest(kind: .block, name: config.export, queueIndex: UInt16(queue),
                       queueDepth: UInt16(config.queueDepth), maxSegments: Self.wantedSegments,
                       maxIOBytes: Self.wantedIOBytes, hostID: hostID, wantsWrite: !config.readOnly)
    }

    /// Connects queue `queue`; with `cq`, the new queue pair completes into it
    /// (a queue keeps its CQ, and so its wake fd, across reconnects).
    var targetDescription: String { "\(config.target)" }

    func connect(queue: Int, cq: CompletionQueue?, initialCredits: Int = 0, timeoutMilliseconds: Int32)
        throws(InitiatorError) -> (Connection, BlockGeometry) {
        let req = request(queue: queue)
        let data: [UInt8]
        do throws(WireError) { data = try req.encoded() } catch { throw .geometry(target: "\(config.target)", queue: queue, error) }
        let resources = ConnectionResources(sendCQ: cq, receiveCQ: cq,
                                            queuePair: Self.queuePairConfig(slots: config.queueDepth))
        let conn: Connection
        do throws(FabricError) {
            conn = try Connection.connect(to: config.target, resources: resources, privateData: data,
                                          timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            if case .rejected(_, let pd) = error, let reject = ConnectReject(decoding: pd) {
                throw .rejected(target: "\(config.target)", export: "export \(config.export)", queue: queue,
                                reason: reject.reason, message: reject.message)
            }
            throw .connect(target: "\(config.target)", queue: queue, error)
        }
        do throws(WireError) {
            let g = try BlockGeometry(decoding: conn.peerPrivateData, requested: req)
            return (conn, g)
        } catch {
            conn.disconnect(timeoutMilliseconds: 100)
            throw .geometry(target: "\(config.target)", queue: queue, error)
        }
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
