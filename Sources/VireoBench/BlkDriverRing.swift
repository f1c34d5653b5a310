import Virtio
import VirtioDriver

/// The driver side of one split virtqueue for the load generator's hot path:
/// raw pointers into guest memory, no allocation, no bookkeeping arrays.
/// Descriptors are laid out once (`BlkSlots`); submitting a request is one
/// avail-ring entry. Rings come from a `SplitDriverQueue` (which allocated
/// and zeroed them); only this type touches them afterwards.
///
/// Owned by one thread.
final class BlkDriverRing: @unchecked Sendable {
    // SAFETY: the pointers stay valid while `queue.memory` lives (kept by `queue`).
    let queue: SplitDriverQueue
    let size: UInt16
    let eventIdx: Bool
    private let avail: UnsafeMutableRawPointer
    private let used: UnsafeMutableRawPointer
    /// Next avail.idx to publish, last published, next used entry to collect.
    private(set) var availIdx: UInt16 = 0
    private var publishedIdx: UInt16 = 0
    private(set) var lastUsedIdx: UInt16 = 0

    init(queue: SplitDriverQueue) {
        self.queue = queue
        size = queue.size
        eventIdx = queue.eventIdx
        avail = queue.memory.host(queue.availGPA)
        used = queue.memory.host(queue.usedGPA)
        availIdx = queue.availIdx
        publishedIdx = availIdx
        lastUsedIdx = queue.lastUsedIdx
    }

    /// Host pointer to the descriptor table.
    var descriptors: UnsafeMutableRawPointer { queue.memory.host(queue.descGPA) }

    /// Places `head` in the avail ring (visible at the next `publish`).
    @inline(__always)
    func add(head: UInt16) {
        avail.storeBytes(of: head.littleEndian, toByteOffset: 4 + 2 * Int(availIdx & (size &- 1)), as: UInt16.self)
        availIdx &+= 1
    }

    /// Publishes added heads (release store of avail.idx); returns whether the
    /// device asked for a kick (EVENT_IDX avail_event, else NO_NOTIFY).
    @inline(__always)
    func publish() -> Bool {
        let old = publishedIdx, new = availIdx
        guard old != new else { return false }
        publishedIdx = new
        GuestAtomics.storeRelease16(avail + 2, new)
        GuestAtomics.fullFence()
        if eventIdx {
            let event = GuestAtomics.loadRelaxed16(used + 4 + 8 * Int(size))
            return SplitQueue.needEvent(event: event, new: new, old: old)
        }
        return GuestAtomics.loadRelaxed16(used) & RingLayout.usedFlagNoNotify == 0
    }

    /// Whether used entries are waiting.
    @inline(__always)
    var hasUsed: Bool { GuestAtomics.loadAcquire16(used + 2) != lastUsedIdx }

    /// Collects the next used entry (after `hasUsed`).
    @inline(__always)
    func popUsed() -> (id: UInt32, length: UInt32) {
        let e = UnsafeRawPointer(used + 4 + 8 * Int(lastUsedIdx & (size &- 1)))
        lastUsedIdx &+= 1
        return (UInt32(littleEndian: e.loadUnaligned(as: UInt32.self)),
                UInt32(littleEndian: e.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
    }

    /// Asks for a call at the next used entry; returns true if entries are already waiting.
    @inline(__always)
    func enableCalls() -> Bool {
        if eventIdx {
            GuestAtomics.storeRelaxed16(avail + 4 + 2 * Int(size), lastUsedIdx)
        } else {
            GuestAtomics.storeRelaxed16(avail, 0)
        }
        GuestAtomics.fullFence()
        return hasUsed
    }

    /// Suppresses calls while polling (NO_INTERRUPT; with EVENT_IDX a stale used_event does it).
    @inline(__always)
    func disableCalls() {
        if !eventIdx { GuestAtomics.storeRelaxed16(avail, RingLayout.availFlagNoInterrupt) }
    }
}
