import CVireoVerbs
import VireoSys

/// A preallocated chain of send work requests (SEND, SEND_WITH_IMM, RDMA
/// WRITE[_WITH_IMM], RDMA READ) posted with one `ibv_post_send`.
///
/// Fill it with `send`/`write`/`read` (each appends one work request with one
/// local segment; `appendSegment` adds more to the last one), post it with
/// `QueuePair.post(_:)`, then `reset()`. Nothing is allocated after init.
public final class SendBatch: @unchecked Sendable {
    // SAFETY: owned by one worker thread; the arrays live as long as the batch
    // and ibv_post_send copies everything it needs before returning.
    private let wrStorage: FixedArray<ibv_send_wr>
    private let sgeStorage: FixedArray<ibv_sge>
    var wrs: UnsafeMutablePointer<ibv_send_wr> { wrStorage.base }
    var sges: UnsafeMutablePointer<ibv_sge> { sgeStorage.base }
    /// Maximum work requests in one batch.
    public let capacity: Int
    /// Maximum local segments per work request.
    public let maxSegments: Int
    /// Work requests currently in the batch.
    public private(set) var count = 0

    public init(capacity: Int, maxSegments: Int = 1) {
        precondition(capacity > 0 && maxSegments > 0)
        self.capacity = capacity
        self.maxSegments = maxSegments
        wrStorage = FixedArray(repeating: ibv_send_wr(), count: capacity)
        sgeStorage = FixedArray(repeating: ibv_sge(), count: capacity * maxSegments)
    }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == capacity }

    /// Empties the batch.
    @inline(__always)
    public func reset() { count = 0 }

    @inline(__always)
    private func append(
        wrId: UInt64, opcode: ibv_wr_opcode, local: ScatterGatherElement?, signaled: Bool,
        immediate: UInt32?, inline: Bool, solicited: Bool = false
    ) -> UnsafeMutablePointer<ibv_send_wr> {
        precondition(count < capacity, "SendBatch is full: post it first")
        let wr = wrs + count
        let sge = sges + count * maxSegments
        wr.pointee = ibv_send_wr()
        wr.pointee.wr_id = wrId
        wr.pointee.opcode = opcode
        wr.pointee.sg_list = sge
        if let local {
            sge.pointee = ibv_sge(addr: local.address, length: local.length, lkey: local.lkey)
            wr.pointee.num_sge = 1
        } else {
            wr.pointee.num_sge = 0
        }
        var flags: UInt32 = 0
        if signaled { flags |= IBV_SEND_SIGNALED.rawValue }
        if inline { flags |= IBV_SEND_INLINE.rawValue }
        if solicited { flags |= IBV_SEND_SOLICITED.rawValue }
        wr.pointee.send_flags = flags
        if let immediate { wr.pointee.imm_data = immediate.bigEndian }
        count += 1
        return wr
    }

    /// Appends a SEND (SEND_WITH_IMM when `immediate` is given; SEND_WITH_INV when
    /// `invalidating` is: the peer's window with that key is invalid before the peer
    /// sees this SEND's receive completion).
    @inline(__always)
    public func send(
        wrId: UInt64, local: ScatterGatherElement?, immediate: UInt32? = nil, invalidating: UInt32? = nil,
        signaled: Bool = true, inline: Bool = false, solicited: Bool = false
    ) {
        precondition(immediate == nil || invalidating == nil, "a SEND carries an immediate or an invalidation, not both")
        let opcode = invalidating != nil ? IBV_WR_SEND_WITH_INV : immediate == nil ? IBV_WR_SEND : IBV_WR_SEND_WITH_IMM
        let wr = append(wrId: wrId, opcode: opcode, local: local, signaled: signaled, immediate: immediate, inline: inline,
                        solicited: solicited)
        if let invalidating { wr.pointee.invalidate_rkey = invalidating }
    }

    /// Appends a type-2 window bind: `window` grants `access` (remote read or write) to
    /// `[address, address+length)` of `region` (in its iova space) under `key`
    /// (`window.nextKey`), usable only through this queue pair. Unsignaled: a failed bind
    /// completes anyway, and moves the queue pair to error before the SEND chained after it.
    /// Call `window.bound(key:)` once the batch is posted.
    @inline(__always)
    public func bind(
        wrId: UInt64, window: MemoryWindow, key: UInt32, region: MemoryRegion, address: UInt64, length: UInt64,
        access: AccessFlags, signaled: Bool = false
    ) {
        let wr = append(wrId: wrId, opcode: IBV_WR_BIND_MW, local: nil, signaled: signaled, immediate: nil, inline: false)
        wr.pointee.bind_mw.mw = window.handle
        wr.pointee.bind_mw.rkey = key
        wr.pointee.bind_mw.bind_info = ibv_mw_bind_info(mr: region.bindHandle, addr: address, length: length,
                                                        mw_access_flags: UInt32(bitPattern: access.rawValue))
    }

    /// Appends a local invalidation of this side's window (or region) with `key`.
    @inline(__always)
    public func localInvalidate(wrId: UInt64, key: UInt32, signaled: Bool = true) {
        let wr = append(wrId: wrId, opcode: IBV_WR_LOCAL_INV, local: nil, signaled: signaled, immediate: nil, inline: false)
        wr.pointee.invalidate_rkey = key
    }

    /// Appends an RDMA WRITE of `local` to `(remoteAddress, rkey)` (WRITE_WITH_IMM when `immediate` is given).
    @inline(__always)
    public func write(
        wrId: UInt64, local: ScatterGatherElement, remoteAddress: UInt64, rkey: UInt32,
        immediate: UInt32? = nil, signaled: Bool = true
    ) {
        let wr = append(wrId: wrId, opcode: immediate == nil ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_WRITE_WITH_IMM,
                        local: local, signaled: signaled, immediate: immediate, inline: false)
        wr.pointee.wr.rdma.remote_addr = remoteAddress
        wr.pointee.wr.rdma.rkey = rkey
    }

    /// Appends an RDMA READ from `(remoteAddress, rkey)` into `local`.
    @inline(__always)
    public func read(
        wrId: UInt64, local: ScatterGatherElement, remoteAddress: UInt64, rkey: UInt32, signaled: Bool = true
    ) {
        let wr = append(wrId: wrId, opcode: IBV_WR_RDMA_READ, local: local, signaled: signaled,
                        immediate: nil, inline: false)
        wr.pointee.wr.rdma.remote_addr = remoteAddress
        wr.pointee.wr.rdma.rkey = rkey
    }

    /// Appends a zero-length RDMA WRITE: a liveness probe. It names no buffer and no key
    /// (IBA C9-88: a zero-length RDMA operation needs neither), touches nothing at the peer
    /// and raises no completion there, yet completes here only once the peer's RNIC has
    /// acknowledged it; against a peer that is gone it fails (retries exhausted) or never
    /// completes, which is what the caller's timer is for.
    @inline(__always)
    public func probe(wrId: UInt64) {
        let wr = append(wrId: wrId, opcode: IBV_WR_RDMA_WRITE, local: nil, signaled: true, immediate: nil, inline: false)
        wr.pointee.wr.rdma.remote_addr = 0
        wr.pointee.wr.rdma.rkey = 0
    }

    /// Adds one more local segment to the last work request.
    @inline(__always)
    public func appendSegment(_ local: ScatterGatherElement) {
        precondition(count > 0, "no work request to extend")
        let wr = wrs + (count - 1)
        let n = Int(wr.pointee.num_sge)
        precondition(n < maxSegments, "too many segments for this batch")
        (sges + (count - 1) * maxSegments + n).pointee =
            ibv_sge(addr: local.address, length: local.length, lkey: local.lkey)
        wr.pointee.num_sge = Int32(n + 1)
    }

    /// Links the work requests into one list; returns its head (nil when empty).
    @inline(__always)
    func linked() -> UnsafeMutablePointer<ibv_send_wr>? {
        guard count > 0 else { return nil }
        for i in 0..<count { wrs[i].next = i + 1 < count ? wrs + (i + 1) : nil }
        return wrs
    }

    /// Index of `wr` inside the batch.
    func index(of wr: UnsafeMutablePointer<ibv_send_wr>?) -> Int {
        guard let wr else { return 0 }
        return wrs.distance(to: wr)
    }
}

/// A preallocated chain of receive work requests posted with one `ibv_post_recv`.
public final class RecvBatch: @unchecked Sendable {
    // SAFETY: owned by one thread; see SendBatch.
    private let wrStorage: FixedArray<ibv_recv_wr>
    private let sgeStorage: FixedArray<ibv_sge>
    var wrs: UnsafeMutablePointer<ibv_recv_wr> { wrStorage.base }
    var sges: UnsafeMutablePointer<ibv_sge> { sgeStorage.base }
    public let capacity: Int
    public let maxSegments: Int
    public private(set) var count = 0

    public init(capacity: Int, maxSegments: Int = 1) {
        precondition(capacity > 0 && maxSegments > 0)
        self.capacity = capacity
        self.maxSegments = maxSegments
        wrStorage = FixedArray(repeating: ibv_recv_wr(), count: capacity)
        sgeStorage = FixedArray(repeating: ibv_sge(), count: capacity * maxSegments)
    }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == capacity }
    @inline(__always) public func reset() { count = 0 }

    /// Appends a receive of up to `local.length` bytes.
    @inline(__always)
    public func receive(wrId: UInt64, local: ScatterGatherElement) {
        precondition(count < capacity, "RecvBatch is full: post it first")
        let wr = wrs + count
        let sge = sges + count * maxSegments
        sge.pointee = ibv_sge(addr: local.address, length: local.length, lkey: local.lkey)
        wr.pointee = ibv_recv_wr(wr_id: wrId, next: nil, sg_list: sge, num_sge: 1)
        count += 1
    }

    /// Adds one more segment to the last receive.
    @inline(__always)
    public func appendSegment(_ local: ScatterGatherElement) {
        precondition(count > 0)
        let wr = wrs + (count - 1)
        let n = Int(wr.pointee.num_sge)
        precondition(n < maxSegments, "too many segments for this batch")
        (sges + (count - 1) * maxSegments + n).pointee =
            ibv_sge(addr: local.address, length: local.length, lkey: local.lkey)
        wr.pointee.num_sge = Int32(n + 1)
    }

    @inline(__always)
    func linked() -> UnsafeMutablePointer<ibv_recv_wr>? {
        guard count > 0 else { return nil }
        for i in 0..<count { wrs[i].next = i + 1 < count ? wrs + (i + 1) : nil }
        return wrs
    }
}

extension RecvBatch {
    /// Posts the batch's receives, linked, with one call of `post` (`call` names it in the
    /// error), then empties the batch; an empty batch posts nothing. The one body of
    /// `ibv_post_recv` (a queue pair's) and `ibv_post_srq_recv` (a shared receive queue's).
    @inline(__always)
    func post(_ call: StaticString,
              _ post: (UnsafeMutablePointer<ibv_recv_wr>, UnsafeMutablePointer<UnsafeMutablePointer<ibv_recv_wr>?>) -> Int32)
        throws(FabricError) {
        guard let head = linked() else { return }
        var bad: UnsafeMutablePointer<ibv_recv_wr>?
        defer { reset() }
        try FabricError.wrap { () throws(SystemError) in try zeroOrErrno(call) { post(head, &bad) } }
    }
}
