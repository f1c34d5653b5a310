import Synchronization
import VhostUser
import VhostUserFrontend
import Virtio
import VirtioDriver
import VireoSys

/// One split virtqueue driven the way a guest's virtio-net driver drives it
/// under load, with every descriptor bound once to a fixed buffer
/// (descriptor i ↔ buffer i, a single descriptor per chain: header and frame
/// share it, as VERSION_1 allows). Posting a buffer is an avail-ring store,
/// reaping one a used-ring load: nothing on the frame path allocates.
///
/// Rings are allocated by `SplitDriverQueue` (and handed to the back-end by
/// `VhostUserFrontend.setUpRing`); this type then owns the indices. EVENT_IDX
/// is assumed (the load generator always negotiates it). One thread only.
final class NetRing {
    let size: UInt16
    private let mask: UInt16
    private let desc: UnsafeMutableRawPointer
    private let avail: UnsafeMutableRawPointer
    private let used: UnsafeMutableRawPointer
    private let memory: DriverMemory
    let kick: SharedEventFD
    let call: SharedEventFD
    private let poller: Poller
    /// Next avail.idx to publish (free-running).
    private(set) var availIdx: UInt16
    private var publishedIdx: UInt16
    /// Next used entry to reap (free-running).
    private(set) var lastUsed: UInt16
    /// Kicks sent (eventfd writes), for the summary.
    private(set) var kicks: UInt64 = 0
    /// Sleeps on the call eventfd, for the summary.
    private(set) var sleeps: UInt64 = 0

    /// Takes over `queue` (set up as `ring` on the back-end; nothing posted yet).
    init(queue: SplitDriverQueue, ring: VhostUserFrontend.Ring) {
        precondition(queue.eventIdx && queue.availIdx == queue.lastUsedIdx)
        memory = queue.memory
        size = queue.size
        mask = queue.size &- 1
        desc = queue.memory.host(queue.descGPA)
        avail = queue.memory.host(queue.availGPA)
        used = queue.memory.host(queue.usedGPA)
        kick = ring.kick
        call = ring.call
        availIdx = queue.availIdx
        publishedIdx = queue.availIdx
        lastUsed = queue.lastUsedIdx
        poller = Poller(capacity: 1)
        poller.add(ring.call.rawValue)
    }

    /// Chains the driver has made available and not yet reaped.
    var inFlight: Int { Int(availIdx &- lastUsed) }

    /// Binds descriptor `id` to `length` bytes at `gpa` (device-writable for RX).
    func bind(_ id: UInt16, gpa: UInt64, length: UInt32, writable: Bool) {
        precondition(id < size)
        // SAFETY: descriptor `id` < size lies in the table SplitDriverQueue allocated.
        let d = desc + Int(id) * RingLayout.descriptorSize
        d.storeBytes(of: gpa.littleEndian, toByteOffset: 0, as: UInt64.self)
        d.storeBytes(of: length.littleEndian, toByteOffset: 8, as: UInt32.self)
        d.storeBytes(of: (writable ? RingLayout.descFlagWrite : 0).littleEndian, toByteOffset: 12, as: UInt16.self)
        d.storeBytes(of: UInt16(0), toByteOffset: 14, as: UInt16.self)
    }

    /// Places chain `id` in the avail ring (visible after `publish`).
    @inline(__always)
    func post(_ id: UInt16) {
        // SAFETY: slot < size, inside the avail ring (flags, idx, ring[size], used_event).
        (avail + 4 + 2 * Int(availIdx & mask)).storeBytes(of: id.littleEndian, as: UInt16.self)
        availIdx &+= 1
    }

    /// Publishes what was posted (release store of avail.idx) and kicks when
    /// the device's avail_event asks for it (virtio 1.x §2.7.10).
    @inline(__always)
    func publish() {
        let old = publishedIdx
        let new = availIdx
        guard old != new else { return }
        publishedIdx = new
        GuestAtomics.storeRelease16(avail + 2, new)
        GuestAtomics.fullFence()  // avail.idx before reading avail_event
        // SAFETY: avail_event is used->ring[size], inside the used area.
        let event = GuestAtomics.loadRelaxed16(used + 4 + 8 * Int(size))
        if SplitQueue.needEvent(event: event, new: new, old: old) {
            kick.signal()
            kicks &+= 1
        }
    }

    /// Used entries the device published and the driver has not reaped.
    @inline(__always)
    var pending: Int { Int(GuestAtomics.loadAcquire16(used + 2) &- lastUsed) }

    /// Reaps the next used entry: its id and written length, or nil.
    /// Call only after `pending` said there is one (acquire done there).
    @inline(__always)
    func reap() -> (id: UInt16, length: UInt32) {
        // SAFETY: slot < size, inside the used ring.
        let e = UnsafeRawPointer(used + 4 + 8 * Int(lastUsed & mask))
        let id = UInt32(littleEndian: e.loadUnaligned(as: UInt32.self))
        let length = UInt32(littleEndian: e.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        lastUsed &+= 1
        return (UInt16(truncatingIfNeeded: id), length)
    }

    /// Host pointer of guest-physical `gpa` (setup only: walks the layout).
    func host(_ gpa: UInt64) -> UnsafeMutableRawPointer { memory.host(gpa) }

    /// Poll-then-sleep until at least one used entry is pending, `stop` is
    /// set, or `timeoutMilliseconds` passed: spins `spinNanoseconds`, then
    /// asks for a call once `threshold` more entries are used (used_event),
    /// re-checks, and blocks on the call eventfd.
    func waitForUsed(threshold: Int, spinNanoseconds: UInt64, timeoutMilliseconds: Int32, stop: borrowing Atomic<Bool>) {
        if pending > 0 { return }
        let start = monotonicNanoseconds()
        var spins = 0
        while true {
            if pending > 0 || stop.load(ordering: .relaxed) { return }
            spins &+= 1
            if spins & 63 == 0, monotonicNanoseconds() &- start >= spinNanoseconds { break }
        }
        let ahead = UInt16(clamping: max(1, threshold)) &- 1
        // SAFETY: used_event is avail->ring[size], inside the avail area.
        GuestAtomics.storeRelaxed16(avail + 4 + 2 * Int(size), lastUsed &+ ahead)
        GuestAtomics.fullFence()  // used_event before re-reading used.idx
        if pending > Int(ahead) { return }
        sleeps &+= 1
        _ = try? poller.wait(timeoutMilliseconds: timeoutMilliseconds)
        call.drain()
    }
}
