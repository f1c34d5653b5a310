import CVireoVerbs
import VireoSys

/// A shared receive queue (`ibv_srq`): one pool of posted receives that every
/// queue pair created on it consumes from, so receive memory is sized by the
/// pool, not by the number of connections. A receive completes on the CQ of the
/// queue pair whose SEND it took, with that queue pair's number in the completion
/// (`Completion.qpNumber`); the work-request id names the buffer.
///
/// When the pool is empty, an incoming SEND is answered receiver-not-ready and the
/// sender retries (Vireo connects with RNR retry 7: for ever), so a short pool
/// slows peers down instead of failing them. Moving a queue pair to error does not
/// flush the shared receives: they stay posted for the others.
///
/// Queue pairs keep their SRQ alive (`QueuePair.sharedReceiveQueue`), so it is
/// destroyed only after every queue pair on it.
public final class SharedReceiveQueue: @unchecked Sendable {
    // SAFETY: immutable pointer; posting from one thread (the worker that owns the pool).
    package let raw: UnsafeMutablePointer<ibv_srq>
    public let pd: ProtectionDomain
    /// Receives it holds at most.
    public let depth: Int
    public let maxSegments: Int

    /// Creates an SRQ of `depth` receives of up to `maxSegments` segments on `pd`.
    public init(pd: ProtectionDomain, depth: Int, maxSegments: Int = 1) throws(FabricError) {
        guard depth > 0, depth <= Int(Int32.max), maxSegments > 0, maxSegments <= Int(Int32.max) else {
            throw .invalidArgument(call: "ibv_create_srq", "depth \(depth) and segments \(maxSegments) must be positive")
        }
        var attr = ibv_srq_init_attr()
        attr.attr.max_wr = UInt32(depth)
        attr.attr.max_sge = UInt32(maxSegments)
        raw = try FabricError.wrap { () throws(SystemError) in
            try nonNull("ibv_create_srq") { ibv_create_srq(pd.raw, &attr) }
        }
        self.pd = pd
        self.depth = depth
        self.maxSegments = maxSegments
    }

    deinit { ibv_destroy_srq(raw) }
}

/// Where receives are posted: a queue pair's own receive queue, a shared receive
/// queue, or a test's fake.
public protocol ReceivePoster: AnyObject, Sendable {
    /// Posts every receive in `batch` in one call, then empties it; a failure names the call.
    func post(_ batch: RecvBatch) throws(FabricError)
}

extension SharedReceiveQueue: ReceivePoster {
    /// Posts every receive in `batch` with one `ibv_post_srq_recv`, then empties it.
    @inline(__always)
    public func post(_ batch: RecvBatch) throws(FabricError) {
        try batch.post("ibv_post_srq_recv") { vireo_ibv_post_srq_recv(raw, $0, $1) }
    }
}

extension ReceivePoster {
    /// Posts `batch` (one receive post) and counts the call in `costs`; an empty batch posts nothing.
    @inline(__always)
    public func post(_ batch: RecvBatch, costs: DataPathCosts) throws(FabricError) {
        guard !batch.isEmpty else { return }
        costs.count(.receivePosts)
        try post(batch)
    }
}
