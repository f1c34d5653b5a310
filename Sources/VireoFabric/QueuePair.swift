import CVireoVerbs
import VireoSys

/// Sizes of a reliable-connected queue pair.
public struct QueuePairConfig: Sendable {
    /// Outstanding send work requests (SEND, WRITE, READ).
    public var sendDepth: Int
    /// Outstanding receive work requests.
    public var receiveDepth: Int
    public var maxSendSegments: Int
    public var maxReceiveSegments: Int
    /// Bytes that may be sent inline (copied into the WQE, no lkey needed).
    public var maxInlineData: Int
    /// RDMA READs this side may have in flight as initiator / accept as responder.
    public var readDepth: Int

    public init(
        sendDepth: Int = 128, receiveDepth: Int = 128, maxSendSegments: Int = 4,
        maxReceiveSegments: Int = 4, maxInlineData: Int = 64, readDepth: Int = 16
    ) {
        self.sendDepth = sendDepth
        self.receiveDepth = receiveDepth
        self.maxSendSegments = maxSendSegments
        self.maxReceiveSegments = maxReceiveSegments
        self.maxInlineData = maxInlineData
        self.readDepth = readDepth
    }
}

/// A reliable-connected queue pair, created on an rdma_cm id.
///
/// Teardown order is carried by references: the QP holds its CQs, PD and cm id,
/// so it is destroyed first, then the CQs and PD, then the id.
public final class QueuePair: @unchecked Sendable {
    // SAFETY: posting from one thread per QP (the worker that owns the connection).
    package let raw: UnsafeMutablePointer<ibv_qp>
    public let pd: ProtectionDomain
    public let sendCQ: CompletionQueue
    public let receiveCQ: CompletionQueue
    public let config: QueuePairConfig
    /// The shared receive queue its receives come from (nil: its own receive queue).
    public let sharedReceiveQueue: SharedReceiveQueue?
    let cmID: CMID

    /// Creates an RC QP on `cmID` (rdma_create_qp moves it to INIT; rdma_cm drives RTR/RTS).
    /// With `sharedReceiveQueue`, its receives come from there and `config`'s receive sizes are unused.
    init(cmID: CMID, pd: ProtectionDomain, sendCQ: CompletionQueue, receiveCQ: CompletionQueue,
         config: QueuePairConfig, sharedReceiveQueue: SharedReceiveQueue? = nil) throws(FabricError) {
        var attr = ibv_qp_init_attr()
        attr.send_cq = sendCQ.raw
        attr.recv_cq = receiveCQ.raw
        attr.qp_type = IBV_QPT_RC
        attr.sq_sig_all = 0
        attr.cap.max_send_wr = UInt32(config.sendDepth)
        attr.cap.max_recv_wr = UInt32(config.receiveDepth)
        attr.cap.max_send_sge = UInt32(config.maxSendSegments)
        attr.cap.max_recv_sge = UInt32(config.maxReceiveSegments)
        attr.cap.max_inline_data = UInt32(config.maxInlineData)
        if let srq = sharedReceiveQueue {
            guard srq.pd === pd else { throw .invalidArgument(call: "rdma_create_qp", "the shared receive queue is on another PD") }
            attr.srq = srq.raw
            attr.cap.max_recv_wr = 0
            attr.cap.max_recv_sge = 0
        }
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrMinusOne("rdma_create_qp") { rdma_create_qp(cmID.raw, pd.raw, &attr) }
        }
        raw = cmID.raw.pointee.qp
        self.pd = pd
        self.sendCQ = sendCQ
        self.receiveCQ = receiveCQ
        self.config = config
        self.sharedReceiveQueue = sharedReceiveQueue
        self.cmID = cmID
    }

    deinit { rdma_destroy_qp(cmID.raw) }

    /// The QP number (shows up in completions).
    public var number: UInt32 { raw.pointee.qp_num }

    /// Moves the queue pair to the error state (`ibv_modify_qp` to IBV_QPS_ERR):
    /// from its return on, the RNIC places no more incoming data in posted
    /// receive buffers and reads no more send buffers; outstanding work
    /// requests complete with a flush error. Used before buffers that were
    /// posted (e.g. guest memory) are given back. Idempotent.
    public func moveToError() throws(FabricError) {
        var attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_ERR
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrErrno("ibv_modify_qp(ERR)") { ibv_modify_qp(raw, &attr, Int32(IBV_QP_STATE.rawValue)) }
        }
    }

    /// Posts every work request in `batch` with one `ibv_post_send`, then empties it.
    /// On failure, the error names the call; work requests before the failing one were posted.
    @inline(__always)
    public func post(_ batch: SendBatch) throws(FabricError) {
        guard let head = batch.linked() else { return }
        var bad: UnsafeMutablePointer<ibv_send_wr>?
        defer { batch.reset() }
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrErrno("ibv_post_send") { vireo_ibv_post_send(raw, head, &bad) }
        }
    }

    /// Posts every receive in `batch` with one `ibv_post_recv`, then empties it (a queue pair on a
    /// shared receive queue has no receive queue of its own: the post fails).
    @inline(__always)
    public func post(_ batch: RecvBatch) throws(FabricError) {
        try batch.post("ibv_post_recv") { vireo_ibv_post_recv(raw, $0, $1) }
    }
}
