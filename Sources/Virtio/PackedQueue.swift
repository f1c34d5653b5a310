/// The device side of a packed virtqueue (virtio 1.x §2.8).
///
/// One descriptor ring shared by driver and device: the driver marks a
/// descriptor available by setting its AVAIL flag to the driver's wrap
/// counter and USED to the inverse; the device marks it used by setting both
/// to the device's wrap counter (§2.8.1). Buffer IDs identify chains; a chain
/// occupies consecutive slots linked by NEXT; INDIRECT points at a table of
/// consecutive descriptors. Event suppression structures replace flags and
/// event indices (§2.8.10).
///
/// Same ownership and hot-path rules as `SplitQueue`.
public final class PackedQueue: DeviceQueue, @unchecked Sendable {
    // SAFETY (Sendable): ownership moves between threads, never shared.

    /// Number of descriptors (1...32768; need not be a power of two, §2.8).
    public let size: UInt16
    /// Where the ring and event suppression structures are.
    public let addresses: RingAddresses
    /// VIRTIO_F_EVENT_IDX negotiated (enables the DESC event mode, §2.8.10).
    public let eventIdx: Bool
    /// Chain walking rules.
    public let rules: ChainRules
    /// The memory table in use.
    public private(set) var memory: GuestMemory

    /// Next ring slot the device reads.
    public private(set) var nextAvail: UInt16
    /// The device's copy of the driver ring wrap counter (§2.8.1), starts true.
    public private(set) var availWrapCounter: Bool
    /// Next ring slot the device writes a used descriptor to.
    public private(set) var nextUsed: UInt16
    /// Device ring wrap counter (§2.8.1), starts true.
    public private(set) var usedWrapCounter: Bool
    public private(set) var brokenReason: QueueBrokenReason?
    public var counters = QueueCounters()
    public internal(set) var kickNotificationsEnabled = true

    private var ring: UnsafeMutableRawPointer
    /// Driver event suppression (driver area): the driver's wishes about used-buffer notifications.
    var driverEvent: UnsafeMutableRawPointer
    /// Device event suppression (device area): the device's wishes about kicks.
    var deviceEvent: UnsafeMutableRawPointer
    /// Used position (slot | wrap << 15) at the last notification decision.
    var signalledUsedState: UInt16 = 0
    var signalledUsedStateValid = false

    /// Sets up the queue.
    ///
    /// - Parameters:
    ///   - availState: next avail slot in bits 0-14 and the avail wrap counter
    ///     in bit 15 (vhost-user SET_VRING_BASE for packed rings); default slot 0, wrap 1.
    ///   - usedState: the same for the used side; nil means equal to `availState`.
    public init(
        size: UInt16, addresses: RingAddresses, memory: GuestMemory,
        eventIdx: Bool, rules: ChainRules = ChainRules(),
        availState: UInt16 = 0x8000, usedState: UInt16? = nil
    ) throws(QueueSetupError) {
        // virtio 1.x §2.8 / §2.6: 1...32768 descriptors, any value.
        guard size > 0, size <= RingLayout.maxQueueSize else { throw .invalidSize(size) }
        let used = usedState ?? availState
        guard availState & 0x7FFF < size, used & 0x7FFF < size else { throw .invalidSize(size) }
        self.size = size
        self.addresses = addresses
        self.eventIdx = eventIdx
        self.rules = rules
        self.memory = memory
        (ring, driverEvent, deviceEvent) = try PackedQueue.resolve(size: size, addresses: addresses, memory: memory)
        nextAvail = availState & 0x7FFF
        availWrapCounter = availState & 0x8000 != 0
        nextUsed = used & 0x7FFF
        usedWrapCounter = used & 0x8000 != 0
    }

    /// virtio 1.x §2.8.10.1 alignment table: descriptor ring 16, event suppression structures 4.
    private static func resolve(
        size: UInt16, addresses a: RingAddresses, memory: GuestMemory
    ) throws(QueueSetupError) -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer) {
        let r = try memory.ringPointer(a.descriptors, length: RingLayout.packedRingBytes(size: size),
                                       alignment: 16, space: a.space, area: .descriptors)
        let drv = try memory.ringPointer(a.driverArea, length: RingLayout.packedEventBytes,
                                         alignment: 4, space: a.space, area: .driver)
        let dev = try memory.ringPointer(a.deviceArea, length: RingLayout.packedEventBytes,
                                         alignment: 4, space: a.space, area: .device)
        return (r, drv, dev)
    }

    public func replaceMemory(_ newMemory: GuestMemory) throws(QueueSetupError) {
        memory = newMemory
        do {
            (ring, driverEvent, deviceEvent) = try PackedQueue.resolve(size: size, addresses: addresses, memory: newMemory)
        } catch {
            markBroken(.ringUnmapped)
            throw error
        }
    }

    public var isBroken: Bool { brokenReason != nil }

    /// vhost-user GET_VRING_BASE for packed rings: avail state (slot | wrap<<15)
    /// in bits 0-15, used state in bits 16-31.
    public var vringBase: UInt32 {
        UInt32(nextAvail | (availWrapCounter ? 0x8000 : 0)) | UInt32(nextUsed | (usedWrapCounter ? 0x8000 : 0)) << 16
    }

    private func markBroken(_ reason: QueueBrokenReason) {
        if brokenReason == nil { counters.broken += 1 }
        brokenReason = reason
    }

    /// virtio 1.x §2.8.1: a descriptor is available when AVAIL equals the
    /// driver's wrap counter and USED differs from it.
    @inline(__always)
    private static func isAvailable(_ flags: UInt16, wrap: Bool) -> Bool {
        let avail = flags & RingLayout.packedDescFlagAvail != 0
        let used = flags & RingLayout.packedDescFlagUsed != 0
        return avail == wrap && used != wrap
    }

    /// Acquire load of the flags of slot `pos`.
    @inline(__always)
    private func loadFlags(_ pos: UInt16) -> UInt16 {
        // SAFETY: pos < size; flags at offset 14 of a 16-byte, 16-aligned descriptor.
        guestLoadAcquire16(ring + Int(pos) * RingLayout.descriptorSize + 14)
    }

    public func hasAvailable() throws(VirtqueueError) -> Bool {
        if let brokenReason { throw .queueBroken(brokenReason) }
        return PackedQueue.isAvailable(loadFlags(nextAvail), wrap: availWrapCounter)
    }

    /// Takes the next available chain into `chain`. Same contract as
    /// `SplitQueue.popAvail`; on `.badRequest` the ring slots are consumed and
    /// `chain.token` (buffer ID, descriptor count) completes it.
    ///
    /// Only the first descriptor's AVAIL/USED flags are checked: the driver
    /// writes the rest of a chain before making its first descriptor
    /// available (§2.8.21.2), as QEMU and Linux vhost also assume.
    public func popAvail(into chain: Chain) throws(VirtqueueError) -> Bool {
        if let brokenReason { throw .queueBroken(brokenReason) }
        // Acquire on the first descriptor's flags: the driver writes the rest
        // of the chain (and this descriptor's addr/len/id) before making the
        // first one available (§2.8.21.2: the first descriptor's flags are written last).
        var flags = loadFlags(nextAvail)
        guard PackedQueue.isAvailable(flags, wrap: availWrapCounter) else { return false }
        chain.reset()
        var pos = nextAvail
        var wrap = availWrapCounter
        var n = 0
        var id: UInt16 = 0
        var failure: BadRequestReason?
        while true {
            n += 1
            // virtio 1.x §2.8.6 / §2.8.19: a chain never holds more descriptors
            // than the ring; a longer NEXT run means the ring is corrupt and the
            // device can no longer tell where chains start.
            guard n <= Int(size) else {
                markBroken(.packedChainTooLong)
                throw .queueBroken(.packedChainTooLong)
            }
            // SAFETY: pos < size; the 16-byte descriptor is inside the checked ring.
            let d = UnsafeRawPointer(ring + Int(pos) * RingLayout.descriptorSize)
            if n > 1 { flags = d.le16(14) }
            // virtio 1.x §2.8.6: the buffer ID is in the chain's last descriptor.
            id = d.le16(12)
            if failure == nil {
                do throws(BadRequestReason) {
                    try chain.appendPackedDescriptor(addr: d.le64(0), len: d.le32(8), flags: flags, rules: rules, memory: memory)
                } catch {
                    failure = error   // keep walking NEXT flags to consume the whole chain
                }
            }
            pos += 1
            if pos == size { pos = 0; wrap.toggle() }
            if flags & RingLayout.descFlagNext == 0 { break }
        }
        nextAvail = pos
        availWrapCounter = wrap
        chain.token = UsedToken(id: id, descriptorCount: UInt16(n))
        counters.popped += 1
        if eventIdx && kickNotificationsEnabled { writeDeviceEventDesc() }
        if let failure {
            counters.badRequests += 1
            throw .badRequest(failure)
        }
        return true
    }

    /// One ring descriptor as the driver wrote it (§2.8.13): what an inflight
    /// record keeps of a chain, since used descriptors overwrite ring slots
    /// of chains still in flight when completions come out of order.
    public struct Descriptor: Equatable, Sendable {
        public var addr: UInt64
        public var len: UInt32
        public var id: UInt16
        public var flags: UInt16

        public init(addr: UInt64, len: UInt32, id: UInt16, flags: UInt16) {
            self.addr = addr
            self.len = len
            self.id = id
            self.flags = flags
        }
    }

    /// The descriptor in ring slot `slot` as it is now (slot below `size`,
    /// else an empty descriptor).
    public func descriptor(atSlot slot: UInt16) -> Descriptor {
        guard slot < size else { return Descriptor(addr: 0, len: 0, id: 0, flags: 0) }
        // SAFETY: slot < size; the 16-byte descriptor is inside the checked ring.
        let d = UnsafeRawPointer(ring + Int(slot) * RingLayout.descriptorSize)
        return Descriptor(addr: d.le64(0), len: d.le32(8), id: d.le16(12), flags: loadFlags(slot))
    }

    /// The ring position `n` descriptors (0...size) after `state` (slot |
    /// wrap << 15, as in `vringBase`): the slot advances, and the wrap
    /// counter flips when it passes the end of the ring (§2.8.1).
    public static func position(_ state: UInt16, advancedBy n: Int, size: UInt16) -> UInt16 {
        var slot = Int(state & 0x7FFF) + n
        var wrap = state & 0x8000 != 0
        if slot >= Int(size) { slot -= Int(size); wrap.toggle() }
        return UInt16(slot) | (wrap ? 0x8000 : 0)
    }

    /// The ring slot `count` slots before the next one the device reads: where
    /// the chain just popped began when `count` is its descriptor count.
    public func slot(before count: UInt16) -> UInt16 {
        var s = Int(nextAvail) - Int(count % size)
        if s < 0 { s += Int(size) }
        return UInt16(s)
    }

    /// Rebuilds a chain from descriptor copies taken when it was popped
    /// (inflight resubmission after a back-end restart), with the rules of
    /// `popAvail`: the buffer ID is the last copy's. The ring is not touched.
    public func rebuildChain(_ copies: [Descriptor], into chain: Chain) throws(BadRequestReason) {
        chain.reset()
        // virtio 1.x §2.8.6: a chain holds 1...size descriptors (the inflight
        // record delimits it; the copies' NEXT flags are not followed again).
        chain.token = UsedToken(id: copies.last?.id ?? 0, descriptorCount: UInt16(clamping: copies.count))
        guard !copies.isEmpty, copies.count <= Int(size) else { throw .chainTooLong }
        for d in copies {
            try chain.appendPackedDescriptor(addr: d.addr, len: d.len, flags: d.flags, rules: rules, memory: memory)
        }
    }

    /// Writes the used descriptor for `token` at the next used slot and makes
    /// it visible (packed rings publish per descriptor: id and len first,
    /// then flags with release ordering, §2.8.6/§2.8.21.2). Advances by the
    /// chain's descriptor count.
    public func addUsed(_ token: UsedToken, length: UInt32) {
        guard brokenReason == nil, token.descriptorCount >= 1, token.descriptorCount <= size else { return }
        // SAFETY: nextUsed < size; the descriptor lies inside the checked ring.
        let d = ring + Int(nextUsed) * RingLayout.descriptorSize
        d.storeLE32(length, at: 8)
        d.storeLE16(token.id, at: 12)
        // virtio 1.x §2.8.1: used = AVAIL and USED both equal to the device wrap counter.
        let f: UInt16 = usedWrapCounter ? (RingLayout.packedDescFlagAvail | RingLayout.packedDescFlagUsed) : 0
        guestStoreRelease16(d + 14, f)
        let next = Int(nextUsed) + Int(token.descriptorCount)
        if next >= Int(size) {
            nextUsed = UInt16(next - Int(size))
            usedWrapCounter.toggle()
        } else {
            nextUsed = UInt16(next)
        }
        counters.completed += 1
    }

    /// Nothing to do: `addUsed` already published (release store of flags).
    public func publishUsed() {}

    public func pushUsed(_ token: UsedToken, length: UInt32) {
        addUsed(token, length: length)
    }
}
