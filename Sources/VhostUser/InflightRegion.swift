import Synchronization
import VireoSys

/// The shared inflight-tracking buffer (INFLIGHT_SHMFD), in the layout QEMU's
/// libvhost-user uses, so a back-end restarted from another implementation
/// can pick it up. The front-end only stores it and hands it back after a
/// reconnect (SET_INFLIGHT_FD).
///
/// Split layout per queue (`QueueRegionSplit`), aligned to 64 bytes:
/// ```
///   u64 features; u16 version; u16 desc_num; u16 last_batch_head; u16 used_idx;
///   DescStateSplit desc[desc_num]   // u8 inflight; u8 pad[5]; u16 next; u64 counter
/// ```
/// Packed layout (`QueueRegionPacked`, see `InflightPackedQueue`): a 32-byte
/// header (features, version, desc_num, free_head, old_free_head, used_idx,
/// old_used_idx, used_wrap_counter, old_used_wrap_counter, padding) and
/// 32-byte `DescStatePacked` entries. The layout follows the negotiated
/// features (QEMU sends SET_FEATURES before GET_INFLIGHT_FD).
public final class InflightRegion: @unchecked Sendable {
    // SAFETY (Sendable): each queue's slice is written only by the worker that
    // owns the queue, or by the control thread while that worker is paused.

    /// Current layout version (`INFLIGHT_VERSION`).
    public static let version: UInt16 = 1
    /// Per-queue alignment (`INFLIGHT_ALIGNMENT`).
    public static let alignment = 64
    static let splitHeaderSize = 16
    static let splitDescSize = 16
    static let packedHeaderSize = 32
    static let packedDescSize = 32

    /// Bytes one queue of `queueSize` descriptors needs.
    public static func queueRegionSize(queueSize: UInt16, packed: Bool) -> Int {
        let raw = packed
            ? packedHeaderSize + packedDescSize * Int(queueSize)
            : splitHeaderSize + splitDescSize * Int(queueSize)
        return (raw + alignment - 1) / alignment * alignment
    }

    private let mapping: MemoryMapping
    private let base: UnsafeMutableRawPointer
    /// The mapping's first byte: a `RestartRecord`'s header precedes the
    /// queue regions (a front-end's region has none).
    let start: UnsafeMutableRawPointer
    /// The backing memfd (sent to the front-end by GET_INFLIGHT_FD).
    public let fd: FileDescriptor
    public let numQueues: Int
    public let queueSize: UInt16
    public let packed: Bool
    /// Total bytes.
    public let size: Int

    /// A fresh zeroed buffer for `numQueues` queues (GET_INFLIGHT_FD). Split
    /// queue regions get version and desc_num now; packed ones stay version 0
    /// until their ring first starts (`InflightPackedQueue.recover` takes the
    /// positions from SET_VRING_BASE then, and only then).
    public init(numQueues: Int, queueSize: UInt16, packed: Bool) throws(SystemError) {
        guard numQueues > 0, numQueues <= 256, queueSize > 0 else { throw SystemError(call: "inflight", errno: 22) }
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.packed = packed
        size = numQueues * Self.queueRegionSize(queueSize: queueSize, packed: packed)
        // Sealed: the front-end keeps this fd, and must not be able to shrink it under our mapping.
        fd = try FileDescriptor.sealedMemfd(name: "vhost-inflight", size: size)
        mapping = try MemoryMapping(fd: fd, offset: 0, count: size)
        base = mapping.baseAddress
        start = base
        for q in 0..<numQueues where !packed {
            let r = queueBase(q)
            // SAFETY: each queue region is at least 16 bytes inside the mapping.
            r.storeBytes(of: UInt16(Self.version).littleEndian, toByteOffset: 8, as: UInt16.self)
            r.storeBytes(of: queueSize.littleEndian, toByteOffset: 10, as: UInt16.self)
        }
    }

    /// Maps a buffer the front-end handed back (SET_INFLIGHT_FD), checking it
    /// is large enough for `numQueues` × `queueSize`.
    public init(adopting fd: consuming FileDescriptor, offset: UInt64, size: UInt64,
                numQueues: Int, queueSize: UInt16, packed: Bool, peerOwner: UInt64? = nil) throws(VhostUserProtocolError) {
        let need = numQueues * Self.queueRegionSize(queueSize: queueSize, packed: packed)
        guard numQueues > 0, numQueues <= 256, queueSize > 0, size >= UInt64(need) else {
            throw VhostUserProtocolError(request: .setInflightFD, .invalid("inflight buffer of \(size) bytes too small for \(numQueues) queues of \(queueSize)"))
        }
        let (end, o) = offset.addingReportingOverflow(size)
        guard !o, end <= UInt64(Int.max) else { throw VhostUserProtocolError(request: .setInflightFD, .invalid("offset + size overflows")) }
        do {
            let fileSize = try fd.size()
            guard fileSize >= Int(end) else {
                throw VhostUserProtocolError(request: .setInflightFD, .invalid("inflight file is \(fileSize) bytes, needs \(end)"))
            }
            // Guarded: the front-end's file; it may shrink it later.
            mapping = try MemoryMapping(fd: fd, offset: 0, count: Int(end), peerOwner: peerOwner)
        } catch let e as SystemError {
            throw VhostUserProtocolError(request: .setInflightFD, .failed("\(e)"))
        } catch let e as VhostUserProtocolError {
            throw e
        } catch {
            throw VhostUserProtocolError(request: .setInflightFD, .failed("\(error)"))
        }
        self.fd = fd
        // SAFETY: offset < end = mapping.count.
        base = mapping.baseAddress.advanced(by: Int(offset))
        start = mapping.baseAddress
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.packed = packed
        self.size = need
    }

    /// Maps a back-end's own record file (`RestartRecord`): `headerBytes` of
    /// its header, then the queue regions. The caller sized the file.
    /// With `peerOwner` the mapping is guarded (`PeerFaultGuard`): a file
    /// someone truncates under it costs that connection, not the process.
    init(record fd: consuming FileDescriptor, headerBytes: Int, numQueues: Int, queueSize: UInt16,
         packed: Bool, peerOwner: UInt64? = nil) throws(SystemError) {
        guard numQueues > 0, numQueues <= 256, queueSize > 0, headerBytes >= 0 else { throw SystemError(call: "inflight record", errno: 22) }
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.packed = packed
        size = numQueues * Self.queueRegionSize(queueSize: queueSize, packed: packed)
        mapping = try MemoryMapping(fd: fd, offset: 0, count: headerBytes + size, peerOwner: peerOwner)
        self.fd = fd
        start = mapping.baseAddress
        // SAFETY: headerBytes < headerBytes + size = mapping.count.
        base = mapping.baseAddress.advanced(by: headerBytes)
    }

    /// Zeroes queue `q`'s region (version 0): its next start begins afresh.
    func clear(queue q: Int) {
        guard q >= 0, q < numQueues else { return }
        Self.zeroQueue(at: queueBase(q), queueSize: queueSize, packed: packed)
    }

    /// Zeroes the queue region at `base` (version 0: `recover` starts afresh).
    static func zeroQueue(at base: UnsafeMutableRawPointer, queueSize: UInt16, packed: Bool) {
        // SAFETY: callers pass the start of a queue region of that size inside a mapping.
        base.initializeMemory(as: UInt8.self, repeating: 0, count: queueRegionSize(queueSize: queueSize, packed: packed))
    }

    func queueBase(_ q: Int) -> UnsafeMutableRawPointer {
        // SAFETY: q < numQueues, so the region is inside the mapping.
        base + q * Self.queueRegionSize(queueSize: queueSize, packed: packed)
    }

    /// The packed-ring view of queue `q` (its worker keeps it: the view holds
    /// the queue's private free list).
    public func packedQueue(_ q: Int) -> InflightPackedQueue? {
        guard q >= 0, q < numQueues, packed else { return nil }
        return InflightPackedQueue(base: queueBase(q), descCount: queueSize)
    }

    /// The split-ring view of queue `q`.
    public func splitQueue(_ q: Int) -> InflightSplitQueue? {
        guard q >= 0, q < numQueues, !packed else { return nil }
        return InflightSplitQueue(base: queueBase(q), descCount: queueSize)
    }
}

/// One queue's `QueueRegionSplit`: what a worker updates on pop and completion.
/// Updates follow libvhost-user's order so a crash at any point leaves a
/// state `recover` can repair.
public struct InflightSplitQueue: @unchecked Sendable {
    // SAFETY (Sendable): a view owned by the queue's worker.
    let base: UnsafeMutableRawPointer
    /// `desc_num`.
    public let descCount: UInt16

    @inline(__always) private func desc(_ i: UInt16) -> UnsafeMutableRawPointer {
        // SAFETY: callers pass i < descCount; entries follow the 16-byte header.
        base + InflightRegion.splitHeaderSize + Int(i) * InflightRegion.splitDescSize
    }

    /// `version` (0: never initialised).
    public var version: UInt16 {
        get { base.load(fromByteOffset: 8, as: UInt16.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 8, as: UInt16.self) }
    }
    /// `used_idx`: the used index after the last completed batch.
    public var usedIndex: UInt16 {
        get { base.load(fromByteOffset: 14, as: UInt16.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 14, as: UInt16.self) }
    }
    /// `last_batch_head`.
    public var lastBatchHead: UInt16 {
        get { base.load(fromByteOffset: 12, as: UInt16.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 12, as: UInt16.self) }
    }

    /// Zeroes the queue's region (version 0): `recover` then starts afresh.
    func clear() { InflightRegion.zeroQueue(at: base, queueSize: descCount, packed: false) }

    /// Whether `head` is marked in flight.
    public func isInflight(_ head: UInt16) -> Bool {
        guard head < descCount else { return false }
        return desc(head).load(as: UInt8.self) == 1
    }

    /// Pop: record `head` with its fetch order `counter`, then mark it in flight.
    @inline(__always)
    public func markPopped(head: UInt16, counter: UInt64) {
        guard head < descCount else { return }
        let d = desc(head)
        d.storeBytes(of: counter.littleEndian, toByteOffset: 8, as: UInt64.self)
        atomicMemoryFence(ordering: .releasing)
        d.storeBytes(of: UInt8(1), as: UInt8.self)
    }

    /// Before the used element for `head` is published (`vu_queue_inflight_pre_put`).
    @inline(__always)
    public func prePut(head: UInt16) {
        guard head < descCount else { return }
        lastBatchHead = head.littleEndian
    }

    /// After used.idx was published as `usedIndex` (`vu_queue_inflight_post_put`).
    @inline(__always)
    public func postPut(head: UInt16, usedIndex newUsed: UInt16) {
        guard head < descCount else { return }
        desc(head).storeBytes(of: UInt8(0), as: UInt8.self)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        usedIndex = newUsed.littleEndian
    }

    /// Reconnect recovery (`vu_check_queue_inflights`): initialises a fresh
    /// region, repairs a completion interrupted between publishing used.idx
    /// and clearing the flag, and returns the heads still in flight in the
    /// order they were fetched, plus the next counter value.
    public func recover(ringUsedIndex: UInt16) -> (heads: [UInt16], nextCounter: UInt64) {
        if version == 0 {
            version = InflightRegion.version.littleEndian
            base.storeBytes(of: descCount.littleEndian, toByteOffset: 10, as: UInt16.self)
            usedIndex = ringUsedIndex.littleEndian
            return ([], 1)
        }
        if UInt16(littleEndian: usedIndex) != ringUsedIndex {
            let h = UInt16(littleEndian: lastBatchHead)
            if h < descCount { desc(h).storeBytes(of: UInt8(0), as: UInt8.self) }
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            usedIndex = ringUsedIndex.littleEndian
        }
        var found: [(UInt16, UInt64)] = []
        for i in 0..<descCount where desc(i).load(as: UInt8.self) == 1 {
            found.append((i, UInt64(littleEndian: desc(i).load(fromByteOffset: 8, as: UInt64.self))))
        }
        found.sort { $0.1 < $1.1 }
        let next = (found.last?.1 ?? 0) &+ 1
        return (found.map(\.0), next)
    }
}
