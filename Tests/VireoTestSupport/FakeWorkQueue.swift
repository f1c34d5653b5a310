import VireoFabric
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// A queue pair with no device, for running a request engine's state machine in a
/// unit test (SPDK's `rdma_ut.c` idea, one level down: the engine is real, the verbs are not).
///
/// It keeps what the engine posts, in order, and refuses what a real queue pair
/// would refuse: more outstanding sends or receives than its depth (ENOMEM, as
/// `ibv_post_send` answers). The test then runs the posted work one request at a
/// time (`runNextSend`), moving bytes between this side's registered memory and a
/// peer's with the key and bounds checks an RNIC makes, and hands the completions
/// it returns to the engine. Unsignaled sends free their send-queue entry only when
/// a later signaled one completes, as on hardware. After `moveToError`, or after a
/// work request fails, everything completes as flushed.
///
/// Thread safe: an engine's worker may post while the test's thread runs the
/// posted work (every entry point takes one lock; none calls out while holding it).
public final class FakeWorkQueue: WorkQueue, @unchecked Sendable {
    // SAFETY: every mutable field is touched only inside `lock.withLock`.
    private let lock = Locked<Int>(0)
    public let sendDepth: Int
    public let receiveDepth: Int
    /// This side's memory: local keys in posted work resolve here.
    public let registrar: FakeRegistrar
    /// Posted sends not yet run, oldest first.
    public private(set) var sends: [WorkRequest] = []
    /// Posted receives not yet consumed by a delivery, oldest first.
    public private(set) var receives: [ReceiveRequest] = []
    /// Send-queue entries in use: posted, and not yet freed by a signaled completion.
    public private(set) var sendQueueUsed = 0
    /// The most send-queue entries ever in use (an engine must stay within `sendDepth`).
    public private(set) var mostSendQueueUsed = 0
    /// Sends run successfully without a completion, whose entries the next signaled completion frees.
    private var unsignaledDone = 0
    public private(set) var isInError = false
    /// `post` calls, for batching assertions.
    public private(set) var sendPostCalls = 0
    public private(set) var receivePostCalls = 0
    /// When set, the next `post` (send or receive) fails with it and posts nothing.
    public var failNextPost: FabricError?
    /// When set, the next send run fails with this status (and the queue goes to error).
    public var failNextSend: CompletionStatus?

    public init(sendDepth: Int, receiveDepth: Int, registrar: FakeRegistrar) {
        self.sendDepth = sendDepth
        self.receiveDepth = receiveDepth
        self.registrar = registrar
    }

    // MARK: WorkQueue (the engine's side)

    public func post(_ batch: SendBatch) throws(FabricError) {
        defer { batch.reset() }
        let refused = lock.withLock { _ -> FabricError? in
            sendPostCalls += 1
            if let e = failNextPost { failNextPost = nil; return e }
            guard sendQueueUsed + batch.count <= sendDepth else {
                return .call(SystemError(call: "ibv_post_send", errno: ENOMEM))
            }
            for i in 0..<batch.count { sends.append(batch.workRequest(at: i)) }
            sendQueueUsed += batch.count
            mostSendQueueUsed = max(mostSendQueueUsed, sendQueueUsed)
            return nil
        }
        if let refused { throw refused }
    }

    public func post(_ batch: RecvBatch) throws(FabricError) {
        defer { batch.reset() }
        let refused = lock.withLock { _ -> FabricError? in
            receivePostCalls += 1
            if let e = failNextPost { failNextPost = nil; return e }
            guard receives.count + batch.count <= receiveDepth else {
                return .call(SystemError(call: "ibv_post_recv", errno: ENOMEM))
            }
            for i in 0..<batch.count { receives.append(batch.receiveRequest(at: i)) }
            return nil
        }
        if let refused { throw refused }
    }

    public func moveToError() throws(FabricError) { lock.withLock { _ in isInError = true } }

    /// Leaves the error state (a shared receive queue's fake: a failed receive fails its queue
    /// pair, not the pool).
    func clearError() { lock.withLock { _ in isInError = false } }

    /// Sends posted and not yet run.
    public var pendingSends: Int { lock.withLock { _ in sends.count } }
    /// The sends posted and not yet run (a snapshot).
    public var pendingSendRequests: [WorkRequest] { lock.withLock { _ in sends } }

    /// The oldest posted send, not yet run.
    public var nextSend: WorkRequest? { lock.withLock { _ in sends.first } }

    /// Whether a receive is posted for the peer's next SEND. When none is, a real
    /// RC queue pair answers receiver-not-ready and the sender retries (retry
    /// count 7: for ever): the SEND waits, in order, and nothing is lost.
    public var hasReceivePosted: Bool { lock.withLock { _ in !receives.isEmpty || isInError } }

    // MARK: the test's side

    /// What running one send did.
    public struct Outcome {
        public let request: WorkRequest
        /// What the engine sees (nil: a successful unsignaled request).
        public let completion: Completion?
        /// The bytes a SEND carried (empty for RDMA operations and failures).
        public let payload: [UInt8]
    }

    /// Runs the oldest posted send. RDMA READ and WRITE move bytes between this side's
    /// memory and `peer`'s (the remote key resolves there); a SEND gathers its payload,
    /// which the test delivers or decodes. Nil when nothing is posted.
    public func runNextSend(peer: FakeRegistrar? = nil) -> Outcome? {
        lock.withLock { _ in runLocked(peer: peer) }
    }

    private func runLocked(peer: FakeRegistrar?) -> Outcome? {
        guard !sends.isEmpty else { return nil }
        let wr = sends.removeFirst()
        if isInError { return finish(wr, .flushed) }
        if let status = failNextSend {
            failNextSend = nil
            return finish(wr, status)
        }
        var locals: [UnsafeMutableRawBufferPointer] = []
        for sge in wr.segments {
            if wr.inline, wr.operation == .send || wr.operation == .sendWithImmediate,
               let p = UnsafeMutableRawPointer(bitPattern: UInt(sge.address)) {
                // Inline data is copied from the address at post time and needs no key.
                locals.append(UnsafeMutableRawBufferPointer(start: p, count: Int(sge.length)))
                continue
            }
            guard let b = registrar.local(sge) else { return finish(wr, .other(4)) }  // IBV_WC_LOC_PROT_ERR
            locals.append(b)
        }
        let total = wr.byteCount
        switch wr.operation {
        case .bindWindow:
            guard let b = wr.binding, registrar.bind(b) else { return finish(wr, .other(6)) }  // IBV_WC_MW_BIND_ERR
            return finish(wr, .success)
        case .localInvalidate:
            guard let key = wr.invalidateKey, registrar.invalidate(key) else { return finish(wr, .other(2)) }  // LOC_QP_OP_ERR
            return finish(wr, .success)
        case .send, .sendWithImmediate, .sendWithInvalidate:
            var payload: [UInt8] = []
            payload.reserveCapacity(total)
            for b in locals { payload.append(contentsOf: b) }
            return finish(wr, .success, payload: payload)
        case .write, .writeWithImmediate, .read:
            if total == 0 { return finish(wr, .success) }  // a zero-length RDMA (a probe) needs no key
            let write = wr.operation != .read
            guard let peer, let remote = peer.remote(address: wr.remoteAddress, length: total, rkey: wr.rkey, write: write)
            else { return finish(wr, .remoteAccessError) }
            var offset = 0
            for b in locals {
                let r = UnsafeMutableRawBufferPointer(rebasing: remote[offset..<offset + b.count])
                if write { r.copyMemory(from: UnsafeRawBufferPointer(b)) } else { b.copyMemory(from: UnsafeRawBufferPointer(r)) }
                offset += b.count
            }
            return finish(wr, .success)
        }
    }

    /// Runs every posted send (and any the `handle` callback makes the engine post) until none is
    /// left. `handle` gets each outcome, typically to feed its completion to the engine.
    ///
    /// With a `receiver` (the peer's queue pair), a send that would land in one of its receives
    /// waits while it has none posted: receiver-not-ready, which RC retries for ever (retry count
    /// 7), so it and everything after it wait, in order. Returns how many ran, and whether the
    /// run stopped at such a send.
    @discardableResult
    public func runAllSends(peer: FakeRegistrar? = nil, receiver: FakeWorkQueue? = nil,
                            _ handle: (Outcome) -> Void) -> (ran: Int, receiverNotReady: Bool) {
        var ran = 0
        while let next = nextSend {
            if let receiver, next.consumesReceive, !receiver.hasReceivePosted { return (ran, true) }
            guard let o = runNextSend(peer: peer) else { break }
            ran += 1
            handle(o)
        }
        return (ran, false)
    }

    /// Delivers a peer's SEND into the oldest posted receive: the receive completion the
    /// engine would poll, or nil when no receive is posted (the peer would see
    /// receiver-not-ready). Too long a message fails the receive (IBV_WC_LOC_LEN_ERR).
    ///
    /// With `invalidating` (a SEND_WITH_INV), this side's window with that key is invalidated
    /// first, and the completion says so; no such bound window fails the receive
    /// (IBV_WC_REM_INV_REQ_ERR) and moves the queue to error.
    public func deliver(_ bytes: [UInt8], immediate: UInt32? = nil, invalidating: UInt32? = nil) -> Completion? {
        lock.withLock { _ in deliverLocked(bytes, immediate: immediate, invalidating: invalidating) }
    }

    private func deliverLocked(_ bytes: [UInt8], immediate: UInt32?, invalidating: UInt32?) -> Completion? {
        guard !receives.isEmpty else { return nil }
        let rr = receives.removeFirst()
        if isInError { return Completion(wrId: rr.wrId, status: .flushed, kind: .receive) }
        guard bytes.count <= rr.byteCount else {
            isInError = true
            return Completion(wrId: rr.wrId, status: .other(1), kind: .receive)
        }
        var offset = 0
        for sge in rr.segments where offset < bytes.count {
            guard let b = registrar.local(sge) else {
                isInError = true
                return Completion(wrId: rr.wrId, status: .other(4), kind: .receive)
            }
            let n = min(b.count, bytes.count - offset)
            bytes.withUnsafeBytes { src in
                b.baseAddress!.copyMemory(from: src.baseAddress! + offset, byteCount: n)
            }
            offset += n
        }
        if let invalidating, !registrar.invalidate(invalidating) {
            isInError = true
            return Completion(wrId: rr.wrId, status: .other(7), kind: .receive)  // IBV_WC_REM_INV_REQ_ERR
        }
        return Completion(wrId: rr.wrId, status: .success, kind: immediate == nil ? .receive : .receiveWithImmediate,
                          byteLength: UInt32(bytes.count), immediate: immediate, invalidatedKey: invalidating)
    }

    /// Moves the queue to error and completes everything posted as flushed, receives
    /// first (what the engine polls after a disconnect).
    public func flushAll() -> [Completion] {
        lock.withLock { _ in
            isInError = true
            var out = receives.map { Completion(wrId: $0.wrId, status: .flushed, kind: .receive) }
            receives.removeAll()
            while let o = runLocked(peer: nil) { if let c = o.completion { out.append(c) } }
            return out
        }
    }

    private func finish(_ wr: WorkRequest, _ status: CompletionStatus, payload: [UInt8] = []) -> Outcome {
        let kind: Completion.Kind = switch wr.operation {
        case .send, .sendWithImmediate, .sendWithInvalidate: .send
        case .write, .writeWithImmediate: .rdmaWrite
        case .read: .rdmaRead
        case .bindWindow: .bindWindow
        case .localInvalidate: .localInvalidate
        }
        guard status == .success else {
            isInError = true
            sendQueueUsed -= 1
            return Outcome(request: wr, completion: Completion(wrId: wr.wrId, status: status, kind: kind), payload: [])
        }
        guard wr.signaled else {
            unsignaledDone += 1
            return Outcome(request: wr, completion: nil, payload: payload)
        }
        sendQueueUsed -= 1 + unsignaledDone
        unsignaledDone = 0
        return Outcome(request: wr, completion: Completion(wrId: wr.wrId, status: .success, kind: kind,
                                                           byteLength: wr.operation == .read ? UInt32(wr.byteCount) : 0),
                       payload: payload)
    }
}
