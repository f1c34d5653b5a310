import CVireoVerbs
import VireoSys

/// A completion queue, optionally bound to a completion channel for
/// event-driven waits. Owned by one worker thread.
public final class CompletionQueue: @unchecked Sendable {
    // SAFETY: a CQ is polled by exactly one thread (its worker); the class is
    // Sendable only so the worker can be handed the CQ at start.
    package let raw: UnsafeMutablePointer<ibv_cq>
    public let context: VerbsContext
    public let channel: CompletionChannel?
    /// Capacity in completions.
    public let capacity: Int
    /// CQ events received but not yet acknowledged (acked in batches: ibv_ack_cq_events takes a lock).
    private var unackedEvents: UInt32 = 0

    /// Creates a CQ of at least `capacity` entries.
    public init(context: VerbsContext, capacity: Int, channel: CompletionChannel? = nil) throws(FabricError) {
        self.context = context
        self.channel = channel
        self.capacity = capacity
        reportsInvalidationAsChecksum = context.name.hasPrefix("rxe")
        raw = try FabricError.wrap { () throws(SystemError) in
            try nonNull("ibv_create_cq") {
                ibv_create_cq(context.raw, Int32(capacity), nil, channel?.raw, 0)
            }
        }
    }

    deinit {
        // Every event taken from the channel must be acked before destroy, or it blocks.
        if unackedEvents > 0 { ibv_ack_cq_events(raw, unackedEvents) }
        ibv_destroy_cq(raw)
    }

    /// Drains up to `completions.capacity` completions into the preallocated buffer.
    /// Returns how many were written (0 when the CQ is empty).
    @inline(__always)
    public func poll(into completions: CompletionBuffer) throws(FabricError) -> Int {
        let n = try FabricError.wrap { () throws(SystemError) in
            try countOrNegativeErrno("ibv_poll_cq") { vireo_ibv_poll_cq(raw, Int32(completions.capacity), completions.raw) }
        }
        completions.count = n
        if reportsInvalidationAsChecksum { Self.repairInvalidationFlags(completions.raw, n) }
        return n
    }

    /// Soft-RoCE (rdma_rxe, 6.1) hands its completions to userspace with the kernel's flag
    /// values, in which "with invalidate" (`IB_WC_WITH_INVALIDATE`, 1 << 2) is the bit
    /// userspace calls `IBV_WC_IP_CSUM_OK`; the key itself is in `invalidated_rkey` as it
    /// should be. On a reliable-connected receive that bit means nothing else, so on an
    /// rxe CQ it is read as `IBV_WC_WITH_INV` (seen in the lab: MemoryWindowIntegrationTests).
    private let reportsInvalidationAsChecksum: Bool

    @inline(__always)
    private static func repairInvalidationFlags(_ wcs: UnsafeMutablePointer<ibv_wc>, _ n: Int) {
        let checksum = UInt32(IBV_WC_IP_CSUM_OK.rawValue), invalidated = UInt32(IBV_WC_WITH_INV.rawValue)
        for i in 0..<n where wcs[i].opcode == IBV_WC_RECV && wcs[i].wc_flags & checksum != 0 {
            wcs[i].wc_flags = (wcs[i].wc_flags & ~checksum) | invalidated
        }
    }

    /// Arms the CQ so the next completion raises a channel event.
    public func requestNotification(solicitedOnly: Bool = false) throws(FabricError) {
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrErrno("ibv_req_notify_cq") { vireo_ibv_req_notify_cq(raw, solicitedOnly ? 1 : 0) }
        }
    }

    /// Records a channel event for this CQ; acks in batches of 64.
    func noteEvent() {
        unackedEvents &+= 1
        if unackedEvents >= 64 {
            ibv_ack_cq_events(raw, unackedEvents)
            unackedEvents = 0
        }
    }

    /// Poll-then-sleep: spins `spin` polls; if still empty, arms the CQ, polls
    /// once more (a completion may have landed before arming), then sleeps on
    /// the channel up to `timeoutMilliseconds` (-1: forever).
    /// Returns the number of completions in `completions` (0 on timeout).
    public func wait(
        into completions: CompletionBuffer, spin: Int = 200, timeoutMilliseconds: Int32 = -1
    ) throws(FabricError) -> Int {
        for _ in 0..<max(spin, 1) {
            let n = try poll(into: completions)
            if n > 0 { return n }
        }
        guard let channel else {
            // No channel: busy-poll until the deadline.
            let deadline = timeoutMilliseconds < 0 ? UInt64.max
                : monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
            while monotonicNanoseconds() < deadline {
                let n = try poll(into: completions)
                if n > 0 { return n }
            }
            return 0
        }
        let deadline = timeoutMilliseconds < 0 ? UInt64.max
            : monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            try requestNotification()
            // A completion may have landed between the last poll and arming.
            let n = try poll(into: completions)
            if n > 0 { return n }
            let now = monotonicNanoseconds()
            if now >= deadline { return 0 }
            let left = deadline == UInt64.max ? Int32(-1) : Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            var pfd = pollfd(fd: channel.fd, events: Int16(POLLIN), revents: 0)
            let ready = try FabricError.wrap { () throws(SystemError) in
                try syscallRetrying("poll") { Glibc.poll(&pfd, 1, left) }
            }
            if ready > 0 {
                // Take every pending event. Events of other CQs sharing this
                // channel (one worker, several CQs) are acked at once: their CQs
                // are polled by the same worker's loop anyway.
                while let cq = try channel.takeEvent() {
                    if cq == OpaquePointer(raw) { noteEvent() } else {
                        ibv_ack_cq_events(UnsafeMutablePointer<ibv_cq>(cq), 1)
                    }
                }
            }
            let m = try poll(into: completions)
            if m > 0 { return m }
        }
    }
}

/// A preallocated array of `ibv_wc` that CQ polls drain into.
public final class CompletionBuffer: @unchecked Sendable {
    // SAFETY: owned and used by one worker thread.
    private let storage: FixedArray<ibv_wc>
    var raw: UnsafeMutablePointer<ibv_wc> { storage.base }
    public let capacity: Int
    /// Valid entries after the last poll.
    public internal(set) var count = 0

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        storage = FixedArray(repeating: ibv_wc(), count: capacity)
    }

    /// Completion `i` of the last poll.
    @inline(__always)
    public subscript(i: Int) -> Completion {
        precondition(i >= 0 && i < count)
        return Completion(raw[i])
    }
}

/// How a work request ended: the verbs completion status as a Swift value, so no
/// module above `VireoFabric` needs the C headers to tell a flush from a dead peer.
public enum CompletionStatus: Sendable, Equatable, CustomStringConvertible {
    case success
    /// Flushed: the QP went to the error state (a disconnect, a drop) before it ran.
    case flushed
    /// Transport retries exhausted: the peer never acknowledged (it vanished).
    case retryExceeded
    /// Receiver-not-ready retries exhausted: the peer never posted a receive.
    case receiverNotReadyRetryExceeded
    /// The peer refused an RDMA READ/WRITE (bad key, address or access).
    case remoteAccessError
    /// The peer failed the operation (e.g. its receive buffer was too small).
    case remoteOperationError
    /// Any other status; `description` names it.
    case other(UInt32)

    @inline(__always)
    init(_ s: ibv_wc_status) {
        switch s {
        case IBV_WC_SUCCESS: self = .success
        case IBV_WC_WR_FLUSH_ERR: self = .flushed
        case IBV_WC_RETRY_EXC_ERR: self = .retryExceeded
        case IBV_WC_RNR_RETRY_EXC_ERR: self = .receiverNotReadyRetryExceeded
        case IBV_WC_REM_ACCESS_ERR: self = .remoteAccessError
        case IBV_WC_REM_OP_ERR: self = .remoteOperationError
        default: self = .other(s.rawValue)
        }
    }

    var raw: ibv_wc_status {
        switch self {
        case .success: return IBV_WC_SUCCESS
        case .flushed: return IBV_WC_WR_FLUSH_ERR
        case .retryExceeded: return IBV_WC_RETRY_EXC_ERR
        case .receiverNotReadyRetryExceeded: return IBV_WC_RNR_RETRY_EXC_ERR
        case .remoteAccessError: return IBV_WC_REM_ACCESS_ERR
        case .remoteOperationError: return IBV_WC_REM_OP_ERR
        case .other(let v): return ibv_wc_status(rawValue: v)
        }
    }

    /// The verbs library's name for it ("transport retry counter exceeded", ...).
    public var description: String { String(cString: ibv_wc_status_str(raw)) }

    /// The peer is gone or never answers (retries of either kind exhausted).
    public var peerUnreachable: Bool { self == .retryExceeded || self == .receiverNotReadyRetryExceeded }
}

/// One work completion, copied out of `ibv_wc`.
public struct Completion: Sendable {
    public let wrId: UInt64
    public let status: CompletionStatus
    let opcode: ibv_wc_opcode
    public let byteLength: UInt32
    /// Immediate data in host order, when `hasImmediate`.
    public let immediate: UInt32
    public let hasImmediate: Bool
    public let qpNumber: UInt32
    /// A receive of a SEND_WITH_INV: the key of this side's window the peer invalidated
    /// (before this completion was made).
    public let invalidatedKey: UInt32?

    @inline(__always)
    init(_ wc: ibv_wc) {
        wrId = wc.wr_id
        status = CompletionStatus(wc.status)
        opcode = wc.opcode
        byteLength = wc.byte_len
        hasImmediate = (wc.wc_flags & UInt32(IBV_WC_WITH_IMM.rawValue)) != 0
        immediate = UInt32(bigEndian: wc.imm_data)
        invalidatedKey = (wc.wc_flags & UInt32(IBV_WC_WITH_INV.rawValue)) != 0 ? wc.invalidated_rkey : nil
        qpNumber = wc.qp_num
    }

    @inline(__always)
    public var isSuccess: Bool { status == .success }
    /// True for completions of receives (RECV, RECV_RDMA_WITH_IMM).
    public var isReceive: Bool { opcode.rawValue & IBV_WC_RECV.rawValue != 0 }
    /// The operation's name (SEND, RDMA_READ, ...), for logs.
    public var operation: String { Self.name(opcode) }

    /// The error this completion represents (for logs and typed failures).
    public var error: FabricError {
        .workCompletion(status: status.description, opcode: Self.name(opcode), wrId: wrId)
    }

    static func name(_ op: ibv_wc_opcode) -> String {
        switch op {
        case IBV_WC_SEND: return "SEND"
        case IBV_WC_RDMA_WRITE: return "RDMA_WRITE"
        case IBV_WC_RDMA_READ: return "RDMA_READ"
        case IBV_WC_RECV: return "RECV"
        case IBV_WC_RECV_RDMA_WITH_IMM: return "RECV_RDMA_WITH_IMM"
        case IBV_WC_BIND_MW: return "BIND_MW"
        case IBV_WC_LOCAL_INV: return "LOCAL_INV"
        default: return "opcode \(op.rawValue)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
