import Virtio

/// The driver side of a packed virtqueue (virtio 1.x §2.8.21/§2.8.22) over
/// `DriverMemory`: allocates the descriptor ring and event suppression
/// structures, adds chains (optionally indirect), decides kicks, collects
/// used descriptors. `addRaw` forges arbitrary descriptors for tests.
///
/// Single-threaded; allocates (test / load-generator code).
public final class PackedDriverQueue {
    public let memory: DriverMemory
    public let size: UInt16
    public let eventIdx: Bool
    /// Guest-physical addresses: ring, driver event suppression, device event suppression.
    public let ringGPA: UInt64, driverEventGPA: UInt64, deviceEventGPA: UInt64
    public let indirectCapacity: Int
    private let indirectGPA: UInt64

    /// Next slot to fill, and the driver's ring wrap counter (§2.8.1).
    public private(set) var nextAvail: UInt16 = 0
    public private(set) var availWrapCounter = true
    /// Next slot to read a used descriptor from, and the expected device wrap counter.
    public private(set) var nextUsed: UInt16 = 0
    public private(set) var usedWrapCounter = true
    /// Ring slots not holding an outstanding chain.
    public private(set) var freeCount: Int
    private var freeIDs: [UInt16]
    private var idDescriptorCount: [UInt16]
    private var kickOldState: UInt16 = 0x8000

    public init(memory: DriverMemory, size: UInt16, eventIdx: Bool, indirectCapacity: Int = 16) {
        self.memory = memory
        self.size = size
        self.eventIdx = eventIdx
        self.indirectCapacity = indirectCapacity
        ringGPA = memory.allocate(RingLayout.packedRingBytes(size: size), alignment: 16)
        driverEventGPA = memory.allocate(4, alignment: 4)
        deviceEventGPA = memory.allocate(4, alignment: 4)
        indirectGPA = memory.allocate(Int(size) * indirectCapacity * 16, alignment: 16)
        memory.fill(ringGPA, count: RingLayout.packedRingBytes(size: size), byte: 0)
        memory.fill(driverEventGPA, count: 4, byte: 0)
        memory.fill(deviceEventGPA, count: 4, byte: 0)
        freeCount = Int(size)
        freeIDs = (0..<size).reversed().map { $0 }
        idDescriptorCount = Array(repeating: 0, count: Int(size))
    }

    public var addresses: RingAddresses {
        RingAddresses(descriptors: ringGPA, driverArea: driverEventGPA, deviceArea: deviceEventGPA, space: .guestPhysical)
    }

    public var frontendAddresses: RingAddresses {
        RingAddresses(descriptors: memory.userAddr(ringGPA), driverArea: memory.userAddr(driverEventGPA),
                      deviceArea: memory.userAddr(deviceEventGPA), space: .frontendVirtual)
    }

    private var availState: UInt16 { nextAvail | (availWrapCounter ? 0x8000 : 0) }

    /// Adds a chain of `readable` then `writable` buffers (or one indirect
    /// descriptor pointing at a table of them) and makes it available.
    /// Returns the buffer ID, or nil if the ring or IDs are exhausted.
    @discardableResult
    public func add(readable: [DriverBuffer], writable: [DriverBuffer], indirect: Bool = false) -> UInt16? {
        let all = readable.map { ($0, false) } + writable.map { ($0, true) }
        precondition(!all.isEmpty)
        guard let id = freeIDs.last, freeCount >= (indirect ? 1 : all.count) else { return nil }
        if indirect {
            precondition(all.count <= indirectCapacity)
            let table = indirectGPA + UInt64(Int(id) * indirectCapacity * 16)
            for (i, (b, w)) in all.enumerated() {
                writeDescriptor(at: table + UInt64(i * 16), addr: b.gpa, len: b.length, id: 0,
                                flags: w ? RingLayout.descFlagWrite : 0)
            }
            addRaw([(table, UInt32(all.count * 16), RingLayout.descFlagIndirect)], id: id)
        } else {
            addRaw(all.enumerated().map { i, e in
                (e.0.gpa, e.0.length,
                 (e.1 ? RingLayout.descFlagWrite : 0) | (i == all.count - 1 ? 0 : RingLayout.descFlagNext))
            }, id: id)
        }
        return id
    }

    /// Writes `descriptors` (flags without AVAIL/USED, which are added for the
    /// current wrap) at the next slots with buffer `id`, the first
    /// descriptor's flags last with release ordering (§2.8.21.2), and
    /// advances. No validation: forge anything.
    public func addRaw(_ descriptors: [(addr: UInt64, len: UInt32, flags: UInt16)], id: UInt16) {
        precondition(!descriptors.isEmpty && descriptors.count <= Int(size))
        if let i = freeIDs.lastIndex(of: id) { freeIDs.remove(at: i) }
        idDescriptorCount[Int(id) % Int(size)] = UInt16(descriptors.count)
        freeCount -= descriptors.count
        var pos = nextAvail, wrap = availWrapCounter
        let firstPos = pos
        var firstFlags: UInt16 = 0
        for (i, d) in descriptors.enumerated() {
            let f = d.flags | (wrap ? RingLayout.packedDescFlagAvail : RingLayout.packedDescFlagUsed)
            let gpa = ringGPA + UInt64(pos) * 16
            if i == 0 {
                firstFlags = f
                let h = memory.host(gpa)
                h.storeBytes(of: d.addr.littleEndian, toByteOffset: 0, as: UInt64.self)
                h.storeBytes(of: d.len.littleEndian, toByteOffset: 8, as: UInt32.self)
                h.storeBytes(of: id.littleEndian, toByteOffset: 12, as: UInt16.self)
            } else {
                writeDescriptor(at: gpa, addr: d.addr, len: d.len, id: id, flags: f)
            }
            pos += 1
            if pos == size { pos = 0; wrap.toggle() }
        }
        GuestAtomics.storeRelease16(memory.host(ringGPA + UInt64(firstPos) * 16 + 14), firstFlags)
        nextAvail = pos
        availWrapCounter = wrap
    }

    /// Whether the device wants a kick for what was added since the last
    /// call (virtio 1.x §2.8.21.3).
    @discardableResult
    public func kick() -> Bool {
        GuestAtomics.fullFence()
        let old = kickOldState, new = availState
        kickOldState = new
        let flags = GuestAtomics.loadRelaxed16(memory.host(deviceEventGPA + 2)) & 3
        switch flags {
        case RingLayout.packedEventDisable: return false
        case RingLayout.packedEventDesc where eventIdx:
            let offWrap = GuestAtomics.loadRelaxed16(memory.host(deviceEventGPA))
            return PackedQueue.needEvent(event: offWrap, new: new, old: old, size: size)
        default: return true
        }
    }

    /// Collects the next used descriptor, if the device wrote one (§2.8.22).
    public func popUsed() -> (id: UInt16, length: UInt32)? {
        let gpa = ringGPA + UInt64(nextUsed) * 16
        let flags = GuestAtomics.loadAcquire16(memory.host(gpa + 14))
        let avail = flags & RingLayout.packedDescFlagAvail != 0
        let used = flags & RingLayout.packedDescFlagUsed != 0
        guard avail == usedWrapCounter, used == usedWrapCounter else { return nil }
        let d = UnsafeRawPointer(memory.host(gpa))
        let len = UInt32(littleEndian: d.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let id = UInt16(littleEndian: d.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        let count = max(1, Int(idDescriptorCount[Int(id) % Int(size)]))
        var next = Int(nextUsed) + count
        if next >= Int(size) { next -= Int(size); usedWrapCounter.toggle() }
        nextUsed = UInt16(next)
        freeCount += count
        freeIDs.append(id)
        return (id, len)
    }

    /// Requests used-buffer notifications (DESC at the next used slot with
    /// EVENT_IDX, else ENABLE). Returns true if used descriptors are pending.
    @discardableResult
    public func enableInterrupts() -> Bool {
        if eventIdx {
            setDriverEvent(offWrap: nextUsed | (usedWrapCounter ? 0x8000 : 0), flags: RingLayout.packedEventDesc)
        } else {
            setDriverEvent(offWrap: 0, flags: RingLayout.packedEventEnable)
        }
        GuestAtomics.fullFence()
        let flags = GuestAtomics.loadAcquire16(memory.host(ringGPA + UInt64(nextUsed) * 16 + 14))
        return (flags & RingLayout.packedDescFlagUsed != 0) == usedWrapCounter
            && (flags & RingLayout.packedDescFlagAvail != 0) == usedWrapCounter
    }

    /// Suppresses used-buffer notifications.
    public func disableInterrupts() {
        setDriverEvent(offWrap: 0, flags: RingLayout.packedEventDisable)
    }

    /// Writes the driver event suppression structure.
    public func setDriverEvent(offWrap: UInt16, flags: UInt16) {
        GuestAtomics.storeRelaxed16(memory.host(driverEventGPA), offWrap)
        GuestAtomics.storeRelaxed16(memory.host(driverEventGPA + 2), flags)
    }

    /// The device event suppression structure as the device wrote it.
    public var deviceEvent: (offWrap: UInt16, flags: UInt16) {
        (GuestAtomics.loadRelaxed16(memory.host(deviceEventGPA)), GuestAtomics.loadRelaxed16(memory.host(deviceEventGPA + 2)))
    }

    /// Writes a packed descriptor at any guest-physical address.
    public func writeDescriptor(at gpa: UInt64, addr: UInt64, len: UInt32, id: UInt16, flags: UInt16) {
        let d = memory.host(gpa)
        d.storeBytes(of: addr.littleEndian, toByteOffset: 0, as: UInt64.self)
        d.storeBytes(of: len.littleEndian, toByteOffset: 8, as: UInt32.self)
        d.storeBytes(of: id.littleEndian, toByteOffset: 12, as: UInt16.self)
        d.storeBytes(of: flags.littleEndian, toByteOffset: 14, as: UInt16.self)
    }
}
