import Synchronization
import Virtio

/// One queue's `QueueRegionPacked` (vhost-user.rst "Inflight I/O tracking",
/// packed virtqueues): what a worker records so that a back-end restarted
/// mid-I/O resubmits every request it had taken and not completed.
///
/// A packed ring keeps no used index in guest memory, and used descriptors
/// overwrite the ring slots of chains still in flight whenever completions
/// come out of order, so the region keeps both: the device's used position
/// (`used_idx`, `used_wrap_counter`) and a copy of every descriptor of every
/// chain in flight (`DescStatePacked` entries linked by `next`, the head entry
/// holding `inflight`, `num`, `last` and the fetch `counter`).
///
/// Layout (32-byte header, then `desc_num` 32-byte entries):
/// ```
///   u64 features; u16 version; u16 desc_num; u16 free_head; u16 old_free_head;
///   u16 used_idx; u16 old_used_idx; u8 used_wrap_counter; u8 old_used_wrap_counter;
///   u8 padding[10]                        // Vireo: bytes 22-23 = head entry being completed
///   entry: u8 inflight; u8 pad; u16 next; u16 last; u16 num; u64 counter;
///          u16 id; u16 flags; u32 len; u64 addr
/// ```
/// The region is the front-end's memory too, so nothing read from it is
/// trusted: the worker keeps the free list and the chain links privately
/// (`free_head`/`old_free_head` are not maintained) and recovery checks every
/// index, count and link before it rebuilds them.
///
/// Completion order (a restart may interrupt it anywhere): the head entry
/// being completed and the new used position are written first (`prePut`),
/// then the used descriptor is published in the ring, then the head leaves
/// flight and `old_used_*` catches up (`postPut`). Recovery finds an
/// interrupted completion by `used_* != old_used_*` and asks the ring whether
/// the used descriptor at the old position was published (its USED flag
/// equals the old wrap counter, §2.8.1): if so the head is done, if not the
/// used position rolls back and the request is resubmitted.
///
/// Owned by the queue's worker (or the control thread while it is paused).
public final class InflightPackedQueue: @unchecked Sendable {
    // SAFETY (Sendable): used by one thread at a time (see above).

    static let headerSize = 32
    static let entrySize = 32
    /// No entry (end of a chain, nothing being completed).
    static let none: UInt16 = 0xFFFF

    let base: UnsafeMutableRawPointer
    /// `desc_num`: entries in the region.
    public let descCount: UInt16
    /// Free entries (a stack): private, so a front-end writing the region
    /// cannot make the worker take an entry twice.
    private var free: [UInt16]
    /// Private mirror of each in-flight chain: the next entry, and at the head, the count.
    private var link: [UInt16]
    private var count: [UInt16]

    init(base: UnsafeMutableRawPointer, descCount: UInt16) {
        self.base = base
        self.descCount = descCount
        free = (0..<descCount).reversed()
        free.reserveCapacity(Int(descCount))
        link = [UInt16](repeating: Self.none, count: Int(descCount))
        count = [UInt16](repeating: 0, count: Int(descCount))
    }

    // MARK: Region fields

    @inline(__always) private func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: base.load(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) private func setU16(_ o: Int, _ v: UInt16) { base.storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt16.self) }
    @inline(__always) private func entry(_ e: UInt16) -> UnsafeMutableRawPointer {
        // SAFETY: callers pass e < descCount; entries follow the 32-byte header inside the region.
        base + Self.headerSize + Int(e) * Self.entrySize
    }

    /// `version` (0: never initialised).
    var version: UInt16 { u16(8) }
    /// The used position (slot | wrap << 15) recovery starts from.
    var usedState: UInt16 {
        u16(16) & 0x7FFF | (base.load(fromByteOffset: 20, as: UInt8.self) != 0 ? 0x8000 : 0)
    }
    private var oldUsedState: UInt16 {
        u16(18) & 0x7FFF | (base.load(fromByteOffset: 21, as: UInt8.self) != 0 ? 0x8000 : 0)
    }
    private func setUsed(_ state: UInt16) {
        setU16(16, state & 0x7FFF)
        base.storeBytes(of: UInt8(state >> 15), toByteOffset: 20, as: UInt8.self)
    }
    private func setOldUsed(_ state: UInt16) {
        setU16(18, state & 0x7FFF)
        base.storeBytes(of: UInt8(state >> 15), toByteOffset: 21, as: UInt8.self)
    }
    /// Vireo's field in the header padding: the head entry being completed.
    private var completing: UInt16 {
        get { u16(22) }
        set { setU16(22, newValue) }
    }

    /// Zeroes the queue's region (version 0): `recover` then starts afresh.
    func clear() { InflightRegion.zeroQueue(at: base, queueSize: descCount, packed: true) }

    /// Whether head entry `e` is marked in flight.
    public func isInflight(entry e: UInt16) -> Bool {
        e < descCount && entry(e).load(as: UInt8.self) == 1
    }

    // MARK: Worker

    /// Pop: copies the chain of `descriptorCount` descriptors that `queue`
    /// just popped (the slots before its next avail slot, still as the driver
    /// wrote them) into free entries, then marks its head in flight. Returns
    /// the head entry, or `none` when fewer entries are free (cannot happen
    /// with the ring no larger than the region: at most `size` descriptors are
    /// in flight).
    @inline(__always)
    func markPopped(queue: PackedQueue, descriptorCount n: UInt16, counter: UInt64) -> UInt16 {
        guard n >= 1, Int(n) <= free.count else { return Self.none }
        var slot = queue.slot(before: n)
        var previous = Self.none
        var head = Self.none
        for _ in 0..<n {
            let e = free.removeLast()
            let d = queue.descriptor(atSlot: slot)
            let p = entry(e)
            p.storeBytes(of: UInt8(0), as: UInt8.self)
            p.storeBytes(of: Self.none.littleEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: d.id.littleEndian, toByteOffset: 16, as: UInt16.self)
            p.storeBytes(of: d.flags.littleEndian, toByteOffset: 18, as: UInt16.self)
            p.storeBytes(of: d.len.littleEndian, toByteOffset: 20, as: UInt32.self)
            p.storeBytes(of: d.addr.littleEndian, toByteOffset: 24, as: UInt64.self)
            if previous == Self.none {
                head = e
            } else {
                link[Int(previous)] = e
                entry(previous).storeBytes(of: e.littleEndian, toByteOffset: 2, as: UInt16.self)
            }
            link[Int(e)] = Self.none
            previous = e
            slot = slot &+ 1 == queue.size ? 0 : slot &+ 1
        }
        count[Int(head)] = n
        let h = entry(head)
        h.storeBytes(of: previous.littleEndian, toByteOffset: 4, as: UInt16.self)
        h.storeBytes(of: n.littleEndian, toByteOffset: 6, as: UInt16.self)
        h.storeBytes(of: counter.littleEndian, toByteOffset: 8, as: UInt64.self)
        atomicMemoryFence(ordering: .releasing)
        h.storeBytes(of: UInt8(1), as: UInt8.self)
        return head
    }

    /// A resubmitted head keeps its entries; it gets a fresh fetch order.
    func recount(entry e: UInt16, counter: UInt64) {
        guard e < descCount else { return }
        entry(e).storeBytes(of: counter.littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// Before the used descriptor for head entry `e` is written: the entry
    /// being completed and the used position after it (slot | wrap << 15).
    @inline(__always)
    func prePut(entry e: UInt16, usedStateAfter state: UInt16) {
        guard e < descCount else { return }
        completing = e
        atomicMemoryFence(ordering: .releasing)
        setUsed(state)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// After the used descriptor for head entry `e` was published: the head
    /// leaves flight, its entries are free again.
    @inline(__always)
    func postPut(entry e: UInt16) {
        guard e < descCount else { return }
        entry(e).storeBytes(of: UInt8(0), as: UInt8.self)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        setOldUsed(usedState)
        completing = Self.none
        var next = e
        var left = count[Int(e)]
        count[Int(e)] = 0
        while left > 0, next != Self.none {
            let after = link[Int(next)]
            link[Int(next)] = Self.none
            free.append(next)
            next = after
            left -= 1
        }
    }

    // MARK: Recovery (control thread, ring paused)

    /// What a restarted ring resumes from.
    struct Recovery {
        /// Device positions (slot | wrap << 15).
        var availState: UInt16
        var usedState: UInt16
        /// Chains still in flight, in fetch order: head entry and descriptor copies.
        var chains: [(entry: UInt16, descriptors: [PackedQueue.Descriptor])]
        var nextCounter: UInt64
    }

    /// Starts ring `queue` (built from SET_VRING_BASE) against the region: a
    /// fresh region is initialised from the queue's positions; a used one
    /// (a back-end restart) is checked, an interrupted completion repaired,
    /// and its positions and chains in flight returned. Throws a description
    /// of the first check a region fails.
    func recover(queue: PackedQueue) throws(InflightRecoveryError) -> Recovery {
        let size = queue.size
        guard size <= descCount else {
            throw InflightRecoveryError("ring of \(size) descriptors, inflight region has \(descCount) entries")
        }
        let ringUsed = queue.vringBase >> 16
        if version == 0 {
            base.storeBytes(of: InflightRegion.version.littleEndian, toByteOffset: 8, as: UInt16.self)
            setU16(10, descCount)
            setU16(12, descCount)
            setU16(14, descCount)
            setUsed(UInt16(truncatingIfNeeded: ringUsed))
            setOldUsed(UInt16(truncatingIfNeeded: ringUsed))
            completing = Self.none
            for e in 0..<descCount { entry(e).storeBytes(of: UInt8(0), as: UInt8.self) }
            resetPrivate(chains: [])
            return Recovery(availState: UInt16(truncatingIfNeeded: queue.vringBase), usedState: UInt16(truncatingIfNeeded: ringUsed),
                            chains: [], nextCounter: 1)
        }
        guard u16(10) == descCount else { throw InflightRecoveryError("desc_num \(u16(10)), expected \(descCount)") }
        for s in [usedState, oldUsedState] where s & 0x7FFF >= size {
            throw InflightRecoveryError("used position \(s & 0x7FFF) outside the ring of \(size)")
        }
        if usedState != oldUsedState {
            // A completion was interrupted: was its used descriptor published?
            // Its head already out of flight means postPut ran (and was cut
            // while catching old_used up, whose two stores can be seen half
            // done); otherwise the ring's slot at the old position tells: the
            // device's used descriptor there has USED equal to the old wrap
            // counter, a driver's descriptor has it inverted (§2.8.1).
            let old = oldUsedState
            let c = completing
            let published: Bool
            if c < descCount, entry(c).load(as: UInt8.self) == 0 {
                published = true
            } else {
                let flags = queue.descriptor(atSlot: old & 0x7FFF).flags
                published = (flags & RingLayout.packedDescFlagUsed != 0) == (old & 0x8000 != 0)
            }
            if published {
                if c < descCount { entry(c).storeBytes(of: UInt8(0), as: UInt8.self) }
                setOldUsed(usedState)
            } else {
                setUsed(old)
            }
        }
        completing = Self.none
        var claimed = [Bool](repeating: false, count: Int(descCount))
        var found: [(entry: UInt16, counter: UInt64, descriptors: [PackedQueue.Descriptor], entries: [UInt16])] = []
        var total = 0
        for h in 0..<descCount where entry(h).load(as: UInt8.self) == 1 {
            let p = entry(h)
            let n = UInt16(littleEndian: p.load(fromByteOffset: 6, as: UInt16.self))
            guard n >= 1, n <= size else { throw InflightRecoveryError("entry \(h): num \(n) not in 1...\(size)") }
            total += Int(n)
            guard total <= Int(size) else { throw InflightRecoveryError("more than \(size) descriptors in flight") }
            var copies: [PackedQueue.Descriptor] = []
            var entries: [UInt16] = []
            copies.reserveCapacity(Int(n))
            var e = h
            for k in 0..<n {
                guard e < descCount, !claimed[Int(e)] else {
                    throw InflightRecoveryError("entry \(h): link \(k) to entry \(e) out of range or already in a chain")
                }
                claimed[Int(e)] = true
                entries.append(e)
                let q = entry(e)
                copies.append(PackedQueue.Descriptor(
                    addr: UInt64(littleEndian: q.load(fromByteOffset: 24, as: UInt64.self)),
                    len: UInt32(littleEndian: q.load(fromByteOffset: 20, as: UInt32.self)),
                    id: UInt16(littleEndian: q.load(fromByteOffset: 16, as: UInt16.self)),
                    flags: UInt16(littleEndian: q.load(fromByteOffset: 18, as: UInt16.self))))
                if k < n - 1 { e = UInt16(littleEndian: q.load(fromByteOffset: 2, as: UInt16.self)) }
            }
            guard UInt16(littleEndian: p.load(fromByteOffset: 4, as: UInt16.self)) == e else {
                throw InflightRecoveryError("entry \(h): last is not the chain's entry \(e)")
            }
            found.append((h, UInt64(littleEndian: p.load(fromByteOffset: 8, as: UInt64.self)), copies, entries))
        }
        found.sort { $0.counter < $1.counter }
        // Every descriptor fetched is either in flight or counted by the used
        // position (each completion advances it by its chain's count).
        let used = usedState
        resetPrivate(chains: found.map(\.entries))
        return Recovery(availState: PackedQueue.position(used, advancedBy: total, size: size), usedState: used,
                        chains: found.map { ($0.entry, $0.descriptors) },
                        nextCounter: (found.map(\.counter).max() ?? 0) &+ 1)
    }

    /// Rebuilds the private free list and links: each chain in flight keeps
    /// its entries (as checked, never re-read from the region).
    private func resetPrivate(chains: [[UInt16]]) {
        link = [UInt16](repeating: Self.none, count: Int(descCount))
        count = [UInt16](repeating: 0, count: Int(descCount))
        var taken = [Bool](repeating: false, count: Int(descCount))
        for entries in chains {
            guard let h = entries.first else { continue }
            count[Int(h)] = UInt16(entries.count)
            for (k, e) in entries.enumerated() {
                taken[Int(e)] = true
                link[Int(e)] = k + 1 < entries.count ? entries[k + 1] : Self.none
            }
        }
        free = (0..<descCount).reversed().filter { !taken[Int($0)] }
        free.reserveCapacity(Int(descCount))
    }
}

/// A packed inflight region that fails a recovery check (the front-end's memory).
struct InflightRecoveryError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
