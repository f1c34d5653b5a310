/// An immutable table of guest memory regions: guest-physical ranges and the
/// front-end (VMM) virtual addresses that alias them, each mapped into this
/// process at a host pointer.
///
/// Built once from a vhost-user `SET_MEM_TABLE` (or a test layout) and then
/// only read, so one instance can be shared by every queue worker thread.
/// A new memory table replaces the whole object; nothing is mutated in place.
///
/// Every translation is overflow-safe, never allocates, and never yields a
/// byte outside a region: an unmapped byte is an error, not a crash.
public final class GuestMemory: @unchecked Sendable {
    // SAFETY (Sendable): all stored properties are `let` and never mutated after
    // `init`; the host pointers they hold are only dereferenced by callers that
    // own the mapping's lifetime (the vhost-user backend keeps the mappings
    // alive for as long as any queue holds this table).

    /// One contiguous region of guest memory.
    public struct Region: Equatable, @unchecked Sendable {
        // SAFETY (Sendable): `hostAddress` is an address value; the memory it
        // designates is shared guest memory accessed with explicit atomics or
        // by the owner of the request, never through Swift exclusivity.

        /// First guest-physical address of the region.
        public let guestPhysAddr: UInt64
        /// Region length in bytes (nonzero).
        public let size: UInt64
        /// First address of the region in the front-end's (VMM's) virtual address space.
        public let userAddr: UInt64
        /// First byte of the region mapped in this process.
        public let hostAddress: UnsafeMutableRawPointer

        /// Describes a region; validation happens in `GuestMemory.init`.
        public init(guestPhysAddr: UInt64, size: UInt64, userAddr: UInt64, hostAddress: UnsafeMutableRawPointer) {
            self.guestPhysAddr = guestPhysAddr
            self.size = size
            self.userAddr = userAddr
            self.hostAddress = hostAddress
        }

        /// Host pointer for `[offset, offset+length)` inside this region, or nil.
        @inline(__always)
        func host(offset: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
            // Overflow-safe containment: offset <= size and length <= size - offset.
            guard offset <= size, length <= size &- offset else { return nil }
            // SAFETY: offset < size <= Int.max (checked in init), so the
            // advanced pointer stays inside the mapping.
            return hostAddress.advanced(by: Int(offset))
        }
    }

    /// A translated piece of a guest range: `length` bytes at `hostPointer`,
    /// which is guest-physical `guestAddr`.
    public struct HostRange: Equatable, @unchecked Sendable {
        // SAFETY (Sendable): plain address values, see `Region`.
        public var hostPointer: UnsafeMutableRawPointer
        public var guestAddr: UInt64
        public var length: UInt64

        public init(hostPointer: UnsafeMutableRawPointer, guestAddr: UInt64, length: UInt64) {
            self.hostPointer = hostPointer
            self.guestAddr = guestAddr
            self.length = length
        }
    }

    /// Regions sorted by guest-physical address.
    public let regions: [Region]
    /// The same regions sorted by front-end virtual address.
    private let regionsByUserAddr: [Region]

    /// The empty table: every translation fails.
    public static let empty = GuestMemory(validated: [])

    private init(validated sorted: [Region]) {
        regions = sorted
        regionsByUserAddr = sorted.sorted { $0.userAddr < $1.userAddr }
    }

    /// Validates and sorts `regions`: each must be nonzero in size, must not
    /// overflow 64 bits (guest-physical, front-end and host addresses), and
    /// must not overlap another region in the guest-physical or front-end
    /// address space.
    public convenience init(regions: [Region]) throws(GuestMemoryError) {
        for (i, r) in regions.enumerated() {
            guard r.size > 0 else { throw .emptyRegion(index: i) }
            guard r.size <= UInt64(Int.max) else { throw .addressOverflow(index: i) }
            let (_, o1) = r.guestPhysAddr.addingReportingOverflow(r.size - 1)
            let (_, o2) = r.userAddr.addingReportingOverflow(r.size - 1)
            let hostBase = UInt64(UInt(bitPattern: r.hostAddress))
            let (_, o3) = hostBase.addingReportingOverflow(r.size - 1)
            guard !o1, !o2, !o3 else { throw .addressOverflow(index: i) }
        }
        let byGPA = regions.sorted { $0.guestPhysAddr < $1.guestPhysAddr }
        for i in byGPA.indices.dropFirst() {
            let prev = byGPA[i - 1], cur = byGPA[i]
            // prev ends at guestPhysAddr + size - 1 (no overflow, checked above).
            if cur.guestPhysAddr <= prev.guestPhysAddr + (prev.size - 1) {
                throw .overlappingGuestPhysical(prev.guestPhysAddr, cur.guestPhysAddr)
            }
        }
        let byUser = regions.sorted { $0.userAddr < $1.userAddr }
        for i in byUser.indices.dropFirst() {
            let prev = byUser[i - 1], cur = byUser[i]
            if cur.userAddr <= prev.userAddr + (prev.size - 1) {
                throw .overlappingUserAddress(prev.userAddr, cur.userAddr)
            }
        }
        self.init(validated: byGPA)
    }

    /// Index of the region containing guest-physical `gpa`, if any. O(log n), no allocation.
    @inline(__always)
    func regionIndex(gpa: UInt64) -> Int? {
        var lo = 0, hi = regions.count
        // Find the last region whose base <= gpa.
        while lo < hi {
            let mid = (lo + hi) >> 1
            if regions[mid].guestPhysAddr <= gpa { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let r = regions[lo - 1]
        return gpa - r.guestPhysAddr < r.size ? lo - 1 : nil
    }

    /// Host pointer for the guest-physical range `[gpa, gpa+length)` when it
    /// lies entirely inside one region; nil otherwise (unmapped, overflowing,
    /// or spanning two regions). `length` 0 still needs `gpa` mapped.
    public func hostPointer(gpa: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        guard let i = regionIndex(gpa: gpa) else { return nil }
        let r = regions[i]
        return r.host(offset: gpa - r.guestPhysAddr, length: length)
    }

    /// Host pointer for the front-end virtual range `[userAddr, userAddr+length)`
    /// when it lies inside one region (vhost-user ring addresses are front-end
    /// virtual addresses). nil otherwise.
    public func hostPointer(userAddr: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        var lo = 0, hi = regionsByUserAddr.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if regionsByUserAddr[mid].userAddr <= userAddr { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let r = regionsByUserAddr[lo - 1]
        return r.host(offset: userAddr - r.userAddr, length: length)
    }

    /// Guest-physical address of front-end virtual `userAddr`, if mapped.
    public func guestPhysAddr(userAddr: UInt64) -> UInt64? {
        for r in regionsByUserAddr where userAddr >= r.userAddr && userAddr - r.userAddr < r.size {
            return r.guestPhysAddr + (userAddr - r.userAddr)
        }
        return nil
    }

    /// Translates the guest-physical range `[gpa, gpa+length)` into host
    /// ranges written to `output`, one per region it touches (a range
    /// crossing two adjacent regions yields two ranges). Returns how many
    /// were written; a zero-length range yields 0.
    ///
    /// Throws `.unmapped` if any byte is outside every region, `.overflow` if
    /// `gpa + length` exceeds 2^64, `.tooManyRanges` if `output` is too small.
    /// Never allocates.
    public func translate(
        gpa: UInt64, length: UInt64, into output: UnsafeMutableBufferPointer<HostRange>
    ) throws(TranslationError) -> Int {
        if length == 0 { return 0 }
        // virtio 1.x §2.7.5: a buffer is [addr, addr+len); reject wrap-around.
        guard gpa <= UInt64.max - (length - 1) else { throw .overflow }
        var addr = gpa
        var remaining = length
        var n = 0
        guard var i = regionIndex(gpa: addr) else { throw .unmapped }
        while true {
            let r = regions[i]
            let offset = addr - r.guestPhysAddr       // < r.size by lookup
            let avail = r.size - offset                // >= 1
            let take = min(avail, remaining)
            guard n < output.count else { throw .tooManyRanges }
            // SAFETY: offset < size <= Int.max and offset + take <= size, so the
            // host range lies inside the region's mapping.
            output[n] = HostRange(hostPointer: r.hostAddress.advanced(by: Int(offset)), guestAddr: addr, length: take)
            n += 1
            remaining -= take
            if remaining == 0 { return n }
            addr += take   // no overflow: gpa + length - 1 fits (checked above)
            // The rest must start exactly at the next region (adjacent, sorted).
            i += 1
            guard i < regions.count, regions[i].guestPhysAddr == addr else { throw .unmapped }
        }
    }
}

/// Why a `GuestMemory` table was rejected.
public enum GuestMemoryError: Error, Equatable, Sendable {
    /// Region `index` has size 0.
    case emptyRegion(index: Int)
    /// Region `index` wraps past 2^64 in some address space, or exceeds Int.max bytes.
    case addressOverflow(index: Int)
    /// Two regions starting at these guest-physical addresses overlap.
    case overlappingGuestPhysical(UInt64, UInt64)
    /// Two regions starting at these front-end virtual addresses overlap.
    case overlappingUserAddress(UInt64, UInt64)
}

/// Why a guest range could not be translated.
public enum TranslationError: Error, Equatable, Sendable {
    /// Some byte of the range is in no region.
    case unmapped
    /// `address + length` exceeds 2^64.
    case overflow
    /// The caller's output storage is too small for the number of regions touched.
    case tooManyRanges
}
