import CVireoVerbs

/// A send work request as Swift values: what a fake work queue reads out of a
/// `SendBatch` to carry it out, and what tests assert on. Not used on the data path.
public struct WorkRequest: Sendable, Equatable {
    /// The verbs operation.
    public enum Operation: Sendable, Equatable {
        case send, sendWithImmediate, sendWithInvalidate, write, writeWithImmediate, read, bindWindow, localInvalidate
    }
    /// A window bind's terms (`bindWindow` only).
    public struct Binding: Sendable, Equatable {
        /// The window's key before the bind (how the device finds it) and the key it gets.
        public var windowKey: UInt32
        public var newKey: UInt32
        /// The region under it (its lkey) and the range, in the region's iova space.
        public var regionLKey: UInt32
        public var address: UInt64
        public var length: UInt64
        public var access: AccessFlags
    }
    public var wrId: UInt64
    public var operation: Operation
    /// Local buffers, in order (gathered for a SEND/WRITE, scattered into for a READ).
    public var segments: [ScatterGatherElement]
    /// Remote address and key (RDMA READ/WRITE only).
    public var remoteAddress: UInt64
    public var rkey: UInt32
    public var immediate: UInt32?
    /// The key a SEND_WITH_INV or a LOCAL_INV invalidates.
    public var invalidateKey: UInt32?
    public var binding: Binding?
    /// Whether it raises a completion when it succeeds (errors always do).
    public var signaled: Bool
    public var inline: Bool

    /// Bytes its local segments add up to.
    public var byteCount: Int { segments.reduce(0) { $0 + Int($1.length) } }

    /// Whether it lands in one of the peer's posted receives (a SEND, or a WRITE with immediate).
    public var consumesReceive: Bool {
        operation == .send || operation == .sendWithImmediate || operation == .sendWithInvalidate || operation == .writeWithImmediate
    }
}

/// A posted receive as Swift values (see `WorkRequest`).
public struct ReceiveRequest: Sendable, Equatable {
    public var wrId: UInt64
    public var segments: [ScatterGatherElement]
    public var byteCount: Int { segments.reduce(0) { $0 + Int($1.length) } }
}

extension SendBatch {
    /// Work request `i` (< `count`) of the batch, as Swift values.
    package func workRequest(at i: Int) -> WorkRequest {
        precondition(i >= 0 && i < count)
        let wr = wrs[i]
        let op: WorkRequest.Operation = switch wr.opcode {
        case IBV_WR_SEND: .send
        case IBV_WR_SEND_WITH_IMM: .sendWithImmediate
        case IBV_WR_SEND_WITH_INV: .sendWithInvalidate
        case IBV_WR_RDMA_WRITE: .write
        case IBV_WR_RDMA_WRITE_WITH_IMM: .writeWithImmediate
        case IBV_WR_BIND_MW: .bindWindow
        case IBV_WR_LOCAL_INV: .localInvalidate
        default: .read
        }
        var binding: WorkRequest.Binding?
        if op == .bindWindow {
            let b = wr.bind_mw
            binding = WorkRequest.Binding(windowKey: b.mw.pointee.rkey, newKey: b.rkey, regionLKey: b.bind_info.mr.pointee.lkey,
                                          address: b.bind_info.addr, length: b.bind_info.length,
                                          access: AccessFlags(rawValue: Int32(bitPattern: b.bind_info.mw_access_flags)))
        }
        let hasImmediate = op == .sendWithImmediate || op == .writeWithImmediate
        let rdma = op == .write || op == .writeWithImmediate || op == .read
        return WorkRequest(
            wrId: wr.wr_id, operation: op,
            segments: (0..<Int(wr.num_sge)).map { k in
                let s = sges[i * maxSegments + k]
                return ScatterGatherElement(address: s.addr, length: s.length, lkey: s.lkey)
            },
            remoteAddress: rdma ? wr.wr.rdma.remote_addr : 0, rkey: rdma ? wr.wr.rdma.rkey : 0,
            immediate: hasImmediate ? UInt32(bigEndian: wr.imm_data) : nil,
            invalidateKey: op == .sendWithInvalidate || op == .localInvalidate ? wr.invalidate_rkey : nil,
            binding: binding,
            signaled: wr.send_flags & IBV_SEND_SIGNALED.rawValue != 0,
            inline: wr.send_flags & IBV_SEND_INLINE.rawValue != 0)
    }
}

extension RecvBatch {
    /// Receive `i` (< `count`) of the batch, as Swift values.
    package func receiveRequest(at i: Int) -> ReceiveRequest {
        precondition(i >= 0 && i < count)
        let wr = wrs[i]
        return ReceiveRequest(wrId: wr.wr_id, segments: (0..<Int(wr.num_sge)).map { k in
            let s = sges[i * maxSegments + k]
            return ScatterGatherElement(address: s.addr, length: s.length, lkey: s.lkey)
        })
    }
}

extension Completion {
    /// What completed, for a fake's completions.
    public enum Kind: Sendable, Equatable {
        case send, rdmaWrite, rdmaRead, receive, receiveWithImmediate, bindWindow, localInvalidate
    }

    /// A completion made by a fake work queue (tests): the same value a device's CQ poll yields.
    package init(wrId: UInt64, status: CompletionStatus, kind: Kind, byteLength: UInt32 = 0,
                 immediate: UInt32? = nil, invalidatedKey: UInt32? = nil, qpNumber: UInt32 = 0) {
        let opcode = switch kind {
        case .send: IBV_WC_SEND
        case .rdmaWrite: IBV_WC_RDMA_WRITE
        case .rdmaRead: IBV_WC_RDMA_READ
        case .receive: IBV_WC_RECV
        case .receiveWithImmediate: IBV_WC_RECV_RDMA_WITH_IMM
        case .bindWindow: IBV_WC_BIND_MW
        case .localInvalidate: IBV_WC_LOCAL_INV
        }
        self.init(Self.wc(wrId: wrId, status: status, opcode: opcode, byteLength: byteLength, immediate: immediate,
                          invalidatedKey: invalidatedKey, qpNumber: qpNumber))
    }

    /// The same completion as a shared receive queue reports it: naming the queue pair whose
    /// SEND the receive took (fakes).
    package func on(queuePair number: UInt32) -> Completion {
        Completion(Self.wc(wrId: wrId, status: status, opcode: opcode, byteLength: byteLength,
                           immediate: hasImmediate ? immediate : nil, invalidatedKey: invalidatedKey, qpNumber: number))
    }

    /// The `ibv_wc` a device would have written for these values (the inverse of `init(_:)`).
    static func wc(wrId: UInt64, status: CompletionStatus, opcode: ibv_wc_opcode, byteLength: UInt32,
                   immediate: UInt32?, invalidatedKey: UInt32? = nil, qpNumber: UInt32) -> ibv_wc {
        var wc = ibv_wc()
        wc.wr_id = wrId
        wc.status = status.raw
        wc.opcode = opcode
        wc.byte_len = byteLength
        if let immediate {
            wc.imm_data = immediate.bigEndian
            wc.wc_flags = UInt32(IBV_WC_WITH_IMM.rawValue)
        } else if let invalidatedKey {
            wc.invalidated_rkey = invalidatedKey
            wc.wc_flags = UInt32(IBV_WC_WITH_INV.rawValue)
        }
        wc.qp_num = qpNumber
        return wc
    }
}

extension CompletionBuffer {
    /// Loads `items` (at most `capacity`) as if a device's CQ poll had returned them; returns how many.
    /// For fake completion sources (tests).
    package func load(_ items: ArraySlice<Completion>) -> Int {
        let n = min(items.count, capacity)
        for (k, c) in items.prefix(n).enumerated() {
            raw[k] = Completion.wc(wrId: c.wrId, status: c.status, opcode: c.opcode, byteLength: c.byteLength,
                                   immediate: c.hasImmediate ? c.immediate : nil, invalidatedKey: c.invalidatedKey,
                                   qpNumber: c.qpNumber)
        }
        count = n
        return n
    }
}
