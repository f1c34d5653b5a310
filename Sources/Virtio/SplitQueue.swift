/// The device side of a split virtqueue (virtio 1.x §2.7).
///
/// Takes chains the driver made available (`popAvail`), returns them used
/// (`pushUsed`), and decides used-buffer notifications (`needsNotification`).
/// Rings are located in guest memory through a `GuestMemory` table.
///
/// Not thread-safe: one worker thread owns a queue at a time (it may be
/// created on one thread and handed to another). No allocation, lock or
/// logging on the hot path; errors are counted in `counters`.
public final class SplitQueue: DeviceQueue, @unchecked Sendable {
    // SAFETY (Sendable): ownership moves between threads, never shared.

    /// Number of descriptors (a power of two, ≤ 32768).
    public let size: UInt16
    /// Where the rings are (kept to re-resolve on a memory table change).
    public let addresses: RingAddresses
    /// VIRTIO_F_EVENT_IDX negotiated (§2.7.7, §2.7.10).
    public let eventIdx: Bool
    /// Chain walking rules (indirect negotiated, indirect bound).
    public let rules: ChainRules
    /// The memory table rings and buffers are translated through.
    public private(set) var memory: GuestMemory

    /// Next avail ring slot to read (free-running, wraps at 2^16).
    public private(set) var lastAvailIdx: UInt16
    /// Next used ring slot to write (free-running).
    public private(set) var usedIdx: UInt16
    /// Set once the ring is found corrupt; the queue then does nothing.
    public private(set) var brokenReason: QueueBrokenReason?
    /// Hot-path statistics.
    public var counters = QueueCounters()
    /// Whether available-buffer notifications (kicks) are requested (see `enableKickNotifications`).
    public internal(set) var kickNotificationsEnabled = true

    // Host pointers of the three areas (virtio 1.x §2.7: desc table, avail ring, used ring).
    private var desc: UnsafeMutableRawPointer
    var avail: UnsafeMutableRawPointer
    var used: UnsafeMutableRawPointer
    /// Last avail.idx read with acquire ordering.
    private var shadowAvailIdx: UInt16
    /// Used idx at the last notification decision (EVENT_IDX `old`).
    var signalledUsed: UInt16 = 0
    var signalledUsedValid = false

    /// Sets up the queue over rings at `addresses`.
    ///
    /// - Parameters:
    ///   - lastAvailIdx: where to resume taking chains (vhost-user SET_VRING_BASE).
    ///   - usedIdx: where to resume writing used entries; nil reads `used.idx` from the ring.
    public init(
        size: UInt16, addresses: RingAddresses, memory: GuestMemory,
        eventIdx: Bool, rules: ChainRules = ChainRules(),
        lastAvailIdx: UInt16 = 0, usedIdx: UInt16? = nil
    ) throws(QueueSetupError) {
        // virtio 1.x §2.7: "Queue Size value is always a power of 2" for split
        // rings; §2.6: at most 32768.
        guard size > 0, size <= RingLayout.maxQueueSize, size & (size - 1) == 0 else { throw .invalidSize(size) }
        self.size = size
        self.addresses = addresses
        self.eventIdx = eventIdx
        self.rules = rules
        self.memory = memory
        (desc, avail, used) = try SplitQueue.resolve(size: size, addresses: addresses, memory: memory)
        self.lastAvailIdx = lastAvailIdx
        self.shadowAvailIdx = lastAvailIdx
        // SAFETY: `used` spans the used ring (checked in resolve); idx at offset 2.
        self.usedIdx = usedIdx ?? guestLoadAcquire16(used + 2)
    }

    /// Resolves the three ring areas, checking size and alignment (virtio 1.x §2.7 table:
    /// descriptor table 16, available ring 2, used ring 4).
    private static func resolve(
        size: UInt16, addresses a: RingAddresses, memory: GuestMemory
    ) throws(QueueSetupError) -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer) {
        let d = try memory.ringPointer(a.descriptors, length: RingLayout.splitDescriptorTableBytes(size: size),
                                       alignment: 16, space: a.space, area: .descriptors)
        let av = try memory.ringPointer(a.driverArea, length: RingLayout.splitAvailRingBytes(size: size),
                                        alignment: 2, space: a.space, area: .driver)
        let u = try memory.ringPointer(a.deviceArea, length: RingLayout.splitUsedRingBytes(size: size),
                                       alignment: 4, space: a.space, area: .device)
        return (d, av, u)
    }

    /// Switches to a new memory table (vhost-user SET_MEM_TABLE), re-resolving
    /// the rings. On failure the queue is marked broken (`.ringUnmapped`).
    /// Call only from the owning thread, with no chain of the old table in use.
    public func replaceMemory(_ newMemory: GuestMemory) throws(QueueSetupError) {
        memory = newMemory
        do {
            (desc, avail, used) = try SplitQueue.resolve(size: size, addresses: addresses, memory: newMemory)
        } catch {
            markBroken(.ringUnmapped)
            throw error
        }
    }

    /// Whether the queue was declared broken.
    public var isBroken: Bool { brokenReason != nil }

    /// The driver's avail.idx now (acquire), without taking anything: for
    /// checks at start (a vhost-user back-end's restart record).
    public func peekAvailIndex() -> UInt16 {
        // SAFETY: avail spans 6 + 2*size bytes, 2-byte aligned; idx at offset 2.
        guestLoadAcquire16(avail + 2)
    }

    /// The head the driver put at free-running avail position `position`
    /// (read after `peekAvailIndex`; not checked against the size).
    public func peekAvailHead(at position: UInt16) -> UInt16 {
        // SAFETY: ring[] starts at offset 4 with `size` u16 entries; the slot is masked below size.
        UnsafeRawPointer(avail).le16(4 + 2 * Int(position & (size - 1)))
    }

    /// The vhost-user GET_VRING_BASE value: the next avail index to process.
    public var vringBase: UInt32 { UInt32(lastAvailIdx) }

    func markBroken(_ reason: QueueBrokenReason) {
        if brokenReason == nil { counters.broken += 1 }
        brokenReason = reason
    }

    /// Reads avail.idx with acquire ordering, checking it is at most `size`
    /// entries ahead of `lastAvailIdx`. Returns the number of new entries.
    private func refreshAvail() throws(VirtqueueError) -> UInt16 {
        // SAFETY: avail spans 6 + 2*size bytes, 2-byte aligned; idx at offset 2.
        // Acquire: the ring entries and descriptors the driver wrote before
        // its (release / wmb) store of idx are visible after this load (§2.7.13).
        let idx = guestLoadAcquire16(avail + 2)
        let pending = idx &- lastAvailIdx
        // virtio 1.x §2.7.6: the driver can have at most Queue Size entries
        // outstanding; a bigger jump means avail.idx is corrupt.
        guard pending <= size else {
            markBroken(.availIndexJump)
            throw .queueBroken(.availIndexJump)
        }
        shadowAvailIdx = idx
        return pending
    }

    /// Whether the driver has made chains available that were not popped yet.
    /// Throws `.queueBroken` if avail.idx is corrupt.
    public func hasAvailable() throws(VirtqueueError) -> Bool {
        if let brokenReason { throw .queueBroken(brokenReason) }
        if shadowAvailIdx != lastAvailIdx { return true }
        return try refreshAvail() != 0
    }

    /// Takes the next available chain into `chain`.
    ///
    /// Returns false when the ring is empty. Throws `.badRequest` for a
    /// malformed chain (the slot is consumed; complete it with
    /// `pushUsed(chain.token, length: 0)`), or `.queueBroken` when the ring is
    /// corrupt (the queue then stays broken).
    public func popAvail(into chain: Chain) throws(VirtqueueError) -> Bool {
        if let brokenReason { throw .queueBroken(brokenReason) }
        if shadowAvailIdx == lastAvailIdx {
            if try refreshAvail() == 0 { return false }
        }
        // SAFETY: ring[] starts at offset 4 with `size` u16 entries; slot < size.
        let slot = Int(lastAvailIdx & (size - 1))
        let head = UnsafeRawPointer(avail).le16(4 + 2 * slot)
        // virtio 1.x §2.7.6: ring entries are descriptor chain heads, indices
        // into the descriptor table; one out of range means the ring is corrupt
        // (there is no valid head to complete it with).
        guard head < size else {
            markBroken(.headOutOfRange)
            throw .queueBroken(.headOutOfRange)
        }
        lastAvailIdx &+= 1
        if eventIdx && kickNotificationsEnabled { writeAvailEvent() }
        chain.token = UsedToken(id: head, descriptorCount: 1)
        counters.popped += 1
        do {
            try chain.walkSplit(table: UnsafeRawPointer(desc), size: Int(size), head: Int(head), rules: rules, memory: memory)
        } catch {
            counters.badRequests += 1
            throw .badRequest(error)
        }
        return true
    }

    /// Walks the chain whose first descriptor is `head` into `chain`, with the
    /// same rules as `popAvail`, without reading or consuming the avail ring
    /// (vhost-user inflight resubmission: the heads come from the inflight
    /// region, not from the driver's ring). Counters other than
    /// `badRequests` are unchanged.
    ///
    /// Throws `.badRequest` for a malformed chain (with `head < size` the
    /// token is valid for `pushUsed`; a head out of range throws
    /// `.badRequest(.nextOutOfRange)` and leaves `chain` untouched, since
    /// there is no descriptor to complete), or `.queueBroken` if the queue
    /// was already declared broken.
    public func walkChain(head: UInt16, into chain: Chain) throws(VirtqueueError) {
        if let brokenReason { throw .queueBroken(brokenReason) }
        // virtio 1.x §2.7.5.2 / §2.7.6: a chain head is an index into the
        // descriptor table, below Queue Size.
        guard head < size else {
            counters.badRequests += 1
            throw .badRequest(.nextOutOfRange)
        }
        chain.token = UsedToken(id: head, descriptorCount: 1)
        do {
            try chain.walkSplit(table: UnsafeRawPointer(desc), size: Int(size), head: Int(head), rules: rules, memory: memory)
        } catch {
            counters.badRequests += 1
            throw .badRequest(error)
        }
    }

    /// Writes a used element for `token` with `length` bytes written to the
    /// device-writable buffers, without publishing it (see `publishUsed`).
    public func addUsed(_ token: UsedToken, length: UInt32) {
        guard brokenReason == nil, token.id < size else { return }
        // SAFETY: used ring element `slot` < size at offset 4 + 8*slot, inside
        // the checked 6 + 8*size bytes.
        let slot = Int(usedIdx & (size - 1))
        let e = used + 4 + 8 * slot
        e.storeLE32(UInt32(token.id), at: 0)
        e.storeLE32(length, at: 4)
        usedIdx &+= 1
        counters.completed += 1
    }

    /// Publishes used elements added so far: release store of used.idx, so
    /// the driver sees each element before the index that covers it (§2.7.8).
    public func publishUsed() {
        guard brokenReason == nil else { return }
        // SAFETY: used.idx at offset 2 of the checked used ring, 2-aligned.
        guestStoreRelease16(used + 2, usedIdx)
    }

    /// `addUsed` then `publishUsed`.
    public func pushUsed(_ token: UsedToken, length: UInt32) {
        addUsed(token, length: length)
        publishUsed()
    }
}
