import VireoAuth
import VireoFabric
import VireoWire

/// Opens one queue's connection to a block target: the connect request (export,
/// queue index, what we want), the accept's geometry, the reject's message.
struct TargetConnector: EndpointConnector {
    typealias Grant = BlockGeometry
    let config: DiskConfig
    let credentials: CredentialSource
    /// The disk's paths (one per gateway of its group; one for a plain target).
    let paths: DiskPaths
    /// Segments per command asked for (the most a capsule slot is sized for).
    static let wantedSegments: UInt16 = 128
    /// Segments per command asked for on memory windows: one window each, bound per command.
    static let wantedWindowSegments: UInt16 = 32
    /// Data bytes per command asked for.
    static let wantedIOBytes: UInt32 = 1 << 20
    /// Guest pieces an inline WRITE may gather (send SGEs besides the capsule header).
    static let inlinePieces = 4

    init(config: DiskConfig, credentials: CredentialSource, paths: DiskPaths? = nil) {
        self.config = config
        self.credentials = credentials
        self.paths = paths ?? DiskPaths(config.paths)
    }

    /// The queue pair shape for `slots` request slots.
    static func queuePairConfig(slots: Int, windows: Bool = true) -> QueuePairConfig {
        // Per slot its SEND, and on windows a bind per segment and local invalidations;
        // one more: the handshake's hello, whose completion the engine reaps and ignores.
        let perSlot = windows ? 2 + 2 * Int(wantedWindowSegments) : 1
        return QueuePairConfig(sendDepth: slots * perSlot + 1, receiveDepth: slots, maxSendSegments: 1 + inlinePieces,
                        maxReceiveSegments: 1, maxInlineData: 0, readDepth: 16)
    }

    /// The active path's target.
    var target: FabricAddress { paths.addresses[paths.active] }
    var activePath: Int { paths.active }
    var pathCount: Int { paths.addresses.count }
    func pathDescription(_ index: Int) -> String { "\(paths.addresses[index])" }

    /// Connects over the active path. A failure there makes the next path active (when the
    /// disk has another), so the supervisor's next attempt goes to the next gateway.
    func connect(queue: Int, cq: (any CompletionSource)?, pd: (any MemoryRegistrar)?, initialCredits: Int,
                 timeoutMilliseconds: Int32) throws(InitiatorError) -> (any FabricLink, BlockGeometry) {
        let index = paths.active
        do {
            let made = try connect(to: paths.addresses[index], queue: queue, cq: cq, pd: pd, initialCredits: initialCredits,
                                   timeoutMilliseconds: timeoutMilliseconds)
            paths.connected(index)
            return made
        } catch {
            paths.failed(index, "\(error)")
            throw error
        }
    }
    /// Asks path `index`'s gateway whether it would admit this disk, without a connection:
    /// the connect request of queue 0 marked as a probe, which a target answers with a
    /// `probeAnswer` reject once every admission check passed. Returns nil when it would,
    /// else why not (the gateway's reject message, or the fabric's error).
    func probe(path index: Int, timeoutMilliseconds: Int32) -> String? {
        var req = request(queue: 0)
        req.probe = true
        let data: [UInt8]
        do throws(WireError) { data = try req.encoded() } catch { return "\(error)" }
        // The smallest queue pair rdma_connect takes; the target never accepts it.
        let resources = ConnectionResources(queuePair: QueuePairConfig(sendDepth: 1, receiveDepth: 1, readDepth: 0))
        do throws(FabricError) {
            let conn = try Connection.connect(to: paths.addresses[index], resources: resources, privateData: data,
                                              timeoutMilliseconds: timeoutMilliseconds)
            conn.disconnect(timeoutMilliseconds: 100)
            return "the target accepted a path probe as a connection (it predates path probes)"
        } catch {
            if case .rejected(_, let pd) = error, let answer = ConnectReject(decoding: pd) {
                return answer.reason == .probeAnswer ? nil : "rejected: \(answer.message)"
            }
            return "\(error)"
        }
    }

    var endpointDescription: String { "export \(config.export)" }
    var queuePairConfig: QueuePairConfig { Self.queuePairConfig(slots: config.queueDepth, windows: config.remoteAccess == .windows) }

    func request(queue: Int, initialCredits: Int = 0) -> ConnectRequest {
        ConnectRequest(kind: .block, name: config.export, queueIndex: UInt16(queue),
                       queueDepth: UInt16(config.queueDepth),
                       maxSegments: config.remoteAccess == .windows ? Self.wantedWindowSegments : Self.wantedSegments,
                       maxIOBytes: Self.wantedIOBytes, hostID: credentials.hostID, wantsWrite: !config.readOnly)
    }
}
