import VireoFabric
import VireoWire

/// The guest memory regions registered with the RNIC, sorted by guest-physical
/// address, for translating a chain segment into a wire segment without
/// allocating.
///
/// Each region is registered with iova = its guest-physical address, so a
/// wire segment carries the descriptor's guest address unchanged; only the
/// key differs per region. Mutated by the control thread while the queue
/// workers are parked (vhost-user quiesces before memory callbacks); read by
/// the workers otherwise.
public struct GuestRegionTable: Sendable {
    /// One registered region.
    public struct Entry: Equatable, Sendable {
        /// First guest-physical address (also the MR's iova).
        public var guestPhysAddr: UInt64
        /// Length in bytes (nonzero).
        public var size: UInt64
        /// Key the target uses for RDMA READ/WRITE into this region.
        public var rkey: UInt32
        /// Key for local scatter/gather entries (zero-copy inline SENDs).
        public var lkey: UInt32
        /// The registration, for binding memory windows over it (nil in tables built by tests).
        /// Unowned: the registry keeps it alive as long as this entry exists (both change together,
        /// with the workers parked), and a lookup on the request path costs no reference count.
        public unowned(unsafe) var region: MemoryRegion?

        public init(guestPhysAddr: UInt64, size: UInt64, rkey: UInt32, lkey: UInt32, region: MemoryRegion? = nil) {
            self.guestPhysAddr = guestPhysAddr
            self.size = size
            self.rkey = rkey
            self.lkey = lkey
            self.region = region
        }

        public static func == (a: Entry, b: Entry) -> Bool {
            a.guestPhysAddr == b.guestPhysAddr && a.size == b.size && a.rkey == b.rkey && a.lkey == b.lkey
        }
    }

    /// Entries sorted by `guestPhysAddr`, non-overlapping.
    public private(set) var entries: [Entry] = []

    public init() {}

    /// Adds (or replaces, at the same address) a region.
    public mutating func insert(_ e: Entry) {
        entries.removeAll { $0.guestPhysAddr == e.guestPhysAddr }
        let at = entries.firstIndex { $0.guestPhysAddr > e.guestPhysAddr } ?? entries.count
        entries.insert(e, at: at)
    }

    /// Forgets the region starting at `guestPhysAddr`.
    public mutating func remove(guestPhysAddr: UInt64) {
        entries.removeAll { $0.guestPhysAddr == guestPhysAddr }
    }

    public mutating func removeAll() { entries.removeAll() }

    /// The region holding all of `[address, address+length)`, or nil (unknown
    /// address, or a range running past its region). Overflow-safe.
    ///
    /// `hint`: the index the chain walker found the buffer's guest memory region at
    /// (`Chain.Segment.region`). The table holds the same regions in the same
    /// (guest-physical) order as the guest memory table, so the hint names the entry:
    /// one containment check, O(1). A hint that does not hold the range (a region
    /// that failed to register, a table being changed) falls back to binary search,
    /// so a wrong hint costs time, never a wrong key.
    @inline(__always)
    public func lookup(address: UInt64, length: UInt64, hint: UInt16) -> Entry? {
        let h = Int(hint)
        if h < entries.count, let e = Self.contains(entries[h], address, length) { return e }
        return lookup(address: address, length: length)
    }

    @inline(__always)
    private static func contains(_ e: Entry, _ address: UInt64, _ length: UInt64) -> Entry? {
        guard address >= e.guestPhysAddr else { return nil }
        let offset = address - e.guestPhysAddr
        return offset < e.size && length <= e.size - offset ? e : nil
    }

    /// `lookup(address:length:hint:)` without a hint: binary search.
    @inline(__always)
    public func lookup(address: UInt64, length: UInt64) -> Entry? {
        var lo = 0, hi = entries.count
        // Last entry whose start is <= address.
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].guestPhysAddr <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        return Self.contains(entries[lo - 1], address, length)   // address >= its start
    }

    /// The wire segment for guest buffer `[guestAddr, guestAddr+length)`, or
    /// nil when it is not inside one registered region (the request fails with IOERR).
    /// `hint` as for `lookup`.
    @inline(__always)
    public func wireSegment(guestAddr: UInt64, length: UInt32, hint: UInt16 = 0) -> WireSegment? {
        guard length > 0, let e = lookup(address: guestAddr, length: UInt64(length), hint: hint) else { return nil }
        return WireSegment(address: guestAddr, length: length, rkey: e.rkey)
    }
}
