import CVireoVerbs
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// What a new connection's queue pair is built from. Anything left nil is
/// created for this connection alone (one CQ with its own completion channel).
public struct ConnectionResources: @unchecked Sendable {
    // SAFETY: a value bag of references handed to the thread that builds the connection.
    /// The PD; nil uses the process-wide PD of the device the id is bound to
    /// (so memory registered once serves every connection on that device), or,
    /// with `ownPD`, a new PD of this connection's own.
    public var pd: ProtectionDomain?
    /// With no `pd`: allocate a new PD rather than use the process-wide one (an
    /// initiator device's first connection; its other connections then share it).
    public var ownPD = false
    public var sendCQ: CompletionQueue?
    public var receiveCQ: CompletionQueue?
    /// Where the queue pair's receives come from (nil: a receive queue of its own). Its PD
    /// must be the connection's.
    public var sharedReceiveQueue: SharedReceiveQueue?
    public var queuePair: QueuePairConfig

    public init(pd: ProtectionDomain? = nil, ownPD: Bool = false, sendCQ: CompletionQueue? = nil,
                receiveCQ: CompletionQueue? = nil, sharedReceiveQueue: SharedReceiveQueue? = nil,
                queuePair: QueuePairConfig = QueuePairConfig()) {
        self.sharedReceiveQueue = sharedReceiveQueue
        self.pd = pd
        self.ownPD = ownPD
        self.sendCQ = sendCQ
        self.receiveCQ = receiveCQ
        self.queuePair = queuePair
    }

    /// Builds the QP on `cmID`, creating what is missing.
    func makeQueuePair(on cmID: CMID) throws(FabricError) -> QueuePair {
        guard let ctx = cmID.context else { throw .noDevice("the cm id is bound to no device") }
        let pd: ProtectionDomain
        if let given = self.pd { pd = given } else if ownPD { pd = try ProtectionDomain(context: ctx) } else {
            pd = try ProtectionDomain.shared(for: ctx)
        }
        guard pd.context.raw == ctx.raw else {
            throw .invalidArgument(call: "rdma_create_qp", "the PD belongs to another device")
        }
        var send = sendCQ, recv = receiveCQ
        if send == nil || recv == nil {
            let channel = try CompletionChannel(context: ctx)
            let cq = try CompletionQueue(
                context: ctx, capacity: queuePair.sendDepth + queuePair.receiveDepth, channel: channel)
            send = send ?? cq
            recv = recv ?? cq
        }
        return try QueuePair(cmID: cmID, pd: pd, sendCQ: send!, receiveCQ: recv!, config: queuePair,
                             sharedReceiveQueue: sharedReceiveQueue)
    }
}

extension ProtectionDomain {
    private static let cache = PDCache()

    /// The process-wide PD for the device behind `context`, allocated on first use.
    public static func shared(for context: VerbsContext) throws(FabricError) -> ProtectionDomain {
        try cache.pd(for: context)
    }
}

/// Process-wide PDs by device context (control plane only; a lock is fine here).
private final class PDCache: Sendable {
    /// Keyed by the `ibv_context` address.
    private let pds = Locked<[UInt: ProtectionDomain]>([:])

    func pd(for context: VerbsContext) throws(FabricError) -> ProtectionDomain {
        let key = UInt(bitPattern: context.raw)
        return try pds.withLock { pds throws(FabricError) -> ProtectionDomain in
            if let pd = pds[key] { return pd }
            let pd = try ProtectionDomain(context: context)
            pds[key] = pd
            return pd
        }
    }
}
