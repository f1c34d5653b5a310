import Virtio

/// A guest buffer for the driver: `length` bytes at guest-physical `gpa`.
public struct DriverBuffer: Equatable, Sendable {
    public var gpa: UInt64
    public var length: UInt32
    public init(gpa: UInt64, length: UInt32) {
        self.gpa = gpa
        self.length = length
    }
}

/// The driver side of a split virtqueue (what a guest's virtio driver does,
/// virtio 1.x §2.7.13/§2.7.14) over `DriverMemory`: allocates the rings, adds
/// chains (optionally through an indirect table), publishes them, decides
/// kicks, and collects used entries. Also exposes raw writes so tests can
/// forge malformed descriptors and rings.
///
/// Single-threaded; not a hot-path component (it allocates).
public final class SplitDriverQueue {
    public let memory: DriverMemory
    public let size: UInt16
    public let eventIdx: Bool
    /// Guest-physical addresses of the three areas.
    public let descGPA: UInt64, availGPA: UInt64, usedGPA: UInt64
    /// Entries per preallocated indirect table (one table per head).
    public let indirectCapacity: Int
    private let indirectGPA: UInt64
    private var free: [UInt16]
    private var chainDescriptors: [[UInt16]]
    /// Next avail.idx value to publish (free-running).
    public private(set) var availIdx: UInt16
    private var publishedAvailIdx: UInt16
    /// Next used entry to collect (free-running).
    public private(set) var lastUsedIdx: UInt16

    /// Allocates rings for `size` descriptors and sets both indices to `startIndex`.
    public init(memory: DriverMemory, size: UInt16, eventIdx: Bool, startIndex: UInt16 = 0, indirectCapacity: Int = 16) {
        self.memory = memory
        self.size = size
        self.eventIdx = eventIdx
        self.indirectCapacity = indirectCapacity
        descGPA = memory.allocate(RingLayout.splitDescriptorTableBytes(size: size), alignment: 16)
        availGPA = memory.allocate(RingLayout.splitAvailRingBytes(size: size), alignment: 2)
        usedGPA = memory.allocate(RingLayout.splitUsedRingBytes(size: size), alignment: 4)
        indirectGPA = memory.allocate(Int(size) * indirectCapacity * 16, alignment: 16)
        memory.fill(descGPA, count: RingLayout.splitDescriptorTableBytes(size: size), byte: 0)
        memory.fill(availGPA, count: RingLayout.splitAvailRingBytes(size: size), byte: 0)
        memory.fill(usedGPA, count: RingLayout.splitUsedRingBytes(size: size), byte: 0)
        free = (0..<size).reversed().map { $0 }
        chainDescriptors = Array(repeating: [], count: Int(size))
        availIdx = startIndex
        publishedAvailIdx = startIndex
        lastUsedIdx = startIndex
        memory.host(availGPA + 2).storeBytes(of: startIndex.littleEndian, as: UInt16.self)
        memory.host(usedGPA + 2).storeBytes(of: startIndex.littleEndian, as: UInt16.self)
    }

    /// Ring addresses as guest-physical addresses.
    public var addresses: RingAddresses {
        RingAddresses(descriptors: descGPA, driverArea: availGPA, deviceArea: usedGPA, space: .guestPhysical)
    }

    /// Ring addresses as front-end virtual addresses (what vhost-user sends).
    public var frontendAddresses: RingAddresses {
        RingAddresses(descriptors: memory.userAddr(descGPA), driverArea: memory.userAddr(availGPA),
                      deviceArea: memory.userAddr(usedGPA), space: .frontendVirtual)
    }

    /// Free descriptors.
    public var freeCount: Int { free.count }

    /// Adds a chain of `readable` then `writable` buffers and places its head
    /// in the avail ring (not yet visible: call `publish`). With `indirect`,
    /// one descriptor points at a table holding the buffers. Returns the head,
    /// or nil when descriptors run out.
    @discardableResult
    public func add(readable: [DriverBuffer], writable: [DriverBuffer], indirect: Bool = false) -> UInt16? {
        let all = readable.map { ($0, false) } + writable.map { ($0, true) }
        precondition(!all.isEmpty)
        let needed = indirect ? 1 : all.count
        guard free.count >= needed else { return nil }
        var used: [UInt16] = []
        for _ in 0..<needed { used.append(free.removeLast()) }
        let head = used[0]
        if indirect {
            precondition(all.count <= indirectCapacity)
            let table = indirectGPA + UInt64(Int(head) * indirectCapacity * 16)
            for (i, (b, w)) in all.enumerated() {
                let last = i == all.count - 1
                writeDescriptor(at: table + UInt64(i * 16), addr: b.gpa, len: b.length,
                                flags: (w ? RingLayout.descFlagWrite : 0) | (last ? 0 : RingLayout.descFlagNext),
                                next: last ? 0 : UInt16(i + 1))
            }
            writeDescriptor(head, addr: table, len: UInt32(all.count * 16), flags: RingLayout.descFlagIndirect, next: 0)
        } else {
            for (i, (b, w)) in all.enumerated() {
                let last = i == all.count - 1
                writeDescriptor(used[i], addr: b.gpa, len: b.length,
                                flags: (w ? RingLayout.descFlagWrite : 0) | (last ? 0 : RingLayout.descFlagNext),
                                next: last ? 0 : used[i + 1])
            }
        }
        chainDescriptors[Int(head)] = used
        writeAvailRing(slot: availIdx, head: head)
        availIdx &+= 1
        return head
    }

    /// Publishes the chains added so far (release store of avail.idx) and
    /// returns whether the device wants a kick (virtio 1.x §2.7.10).
    @discardableResult
    public func publish() -> Bool {
        let old = publishedAvailIdx
        let new = availIdx
        publishedAvailIdx = new
        GuestAtomics.storeRelease16(memory.host(availGPA + 2), new)
        // Full fence: avail.idx store before reading the device's suppression state.
        GuestAtomics.fullFence()
        if eventIdx {
            let event = GuestAtomics.loadRelaxed16(memory.host(usedGPA + 4 + 8 * UInt64(size)))
            return SplitQueue.needEvent(event: event, new: new, old: old)
        }
        return GuestAtomics.loadRelaxed16(memory.host(usedGPA)) & RingLayout.usedFlagNoNotify == 0
    }

    /// Collects the next used entry (acquire on used.idx) and frees its descriptors.
    public func popUsed() -> (id: UInt32, length: UInt32)? {
        let idx = GuestAtomics.loadAcquire16(memory.host(usedGPA + 2))
        guard idx != lastUsedIdx else { return nil }
        let slot = UInt64(lastUsedIdx & (size - 1))
        let e = UnsafeRawPointer(memory.host(usedGPA + 4 + 8 * slot))
        let id = UInt32(littleEndian: e.loadUnaligned(as: UInt32.self))
        let len = UInt32(littleEndian: e.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        lastUsedIdx &+= 1
        if id < UInt32(size) {
            free.append(contentsOf: chainDescriptors[Int(id)])
            chainDescriptors[Int(id)] = []
        }
        return (id, len)
    }

    /// Asks for used-buffer notifications: sets used_event = lastUsedIdx
    /// (EVENT_IDX) or clears NO_INTERRUPT. Returns true if entries are
    /// already pending.
    @discardableResult
    public func enableInterrupts() -> Bool {
        if eventIdx { setUsedEvent(lastUsedIdx) } else { setAvailFlags(0) }
        GuestAtomics.fullFence()
        return GuestAtomics.loadAcquire16(memory.host(usedGPA + 2)) != lastUsedIdx
    }

    /// Suppresses used-buffer notifications (NO_INTERRUPT without EVENT_IDX).
    public func disableInterrupts() {
        if !eventIdx { setAvailFlags(RingLayout.availFlagNoInterrupt) }
    }

    // MARK: Raw access for forging rings.

    /// Writes descriptor `index` of the table.
    public func writeDescriptor(_ index: UInt16, addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        writeDescriptor(at: descGPA + UInt64(index) * 16, addr: addr, len: len, flags: flags, next: next)
    }

    /// Writes a split descriptor at any guest-physical address (e.g. an indirect table).
    public func writeDescriptor(at gpa: UInt64, addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        let d = memory.host(gpa)
        d.storeBytes(of: addr.littleEndian, toByteOffset: 0, as: UInt64.self)
        d.storeBytes(of: len.littleEndian, toByteOffset: 8, as: UInt32.self)
        d.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt16.self)
        d.storeBytes(of: next.littleEndian, toByteOffset: 14, as: UInt16.self)
    }

    /// Writes avail ring entry for free-running index `slot`.
    public func writeAvailRing(slot: UInt16, head: UInt16) {
        memory.host(availGPA + 4 + 2 * UInt64(slot & (size - 1))).storeBytes(of: head.littleEndian, as: UInt16.self)
    }

    /// Stores avail.idx directly (release), bypassing the bookkeeping.
    public func forceAvailIdx(_ idx: UInt16) {
        GuestAtomics.storeRelease16(memory.host(availGPA + 2), idx)
    }

    /// Sets used_event (avail->ring[size]).
    public func setUsedEvent(_ v: UInt16) {
        GuestAtomics.storeRelaxed16(memory.host(availGPA + 4 + 2 * UInt64(size)), v)
    }

    /// Sets avail.flags.
    public func setAvailFlags(_ v: UInt16) {
        GuestAtomics.storeRelaxed16(memory.host(availGPA), v)
    }

    /// Reads avail_event (used->ring[size]) as the device wrote it.
    public var availEvent: UInt16 {
        GuestAtomics.loadRelaxed16(memory.host(usedGPA + 4 + 8 * UInt64(size)))
    }

    /// Reads used.flags as the device wrote it.
    public var usedFlags: UInt16 { GuestAtomics.loadRelaxed16(memory.host(usedGPA)) }

    /// Gives back a head the test consumed by forging (frees nothing else).
    public func reclaimAll() {
        free = (0..<size).reversed().map { $0 }
        chainDescriptors = Array(repeating: [], count: Int(size))
    }
}
