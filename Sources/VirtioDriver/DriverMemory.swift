import Virtio
import VireoSys

/// "Guest memory" for the driver side: one memfd-backed mapping carved into
/// regions placed at chosen guest-physical addresses (gaps and adjacent
/// regions allowed), plus the matching `GuestMemory` table for a device.
///
/// Front-end virtual addresses are faked as `userAddrBase + offset in the
/// mapping`, so ring addresses can be given either way. A bump allocator hands
/// out guest-physical space for rings and buffers. Test and load-generator
/// code: allocation and preconditions are fine here.
public final class DriverMemory: @unchecked Sendable {
    // SAFETY (Sendable): the mapping is fixed; concurrent users (driver and
    // device threads) touch disjoint bytes or go through the ring protocol.

    /// One region: guest-physical base, size, and offset into the mapping.
    public struct RegionLayout: Equatable, Sendable {
        public var guestPhysAddr: UInt64
        public var size: Int
        public var mappingOffset: Int
    }

    /// The memfd holding guest memory (a vhost-user front-end sends it with SET_MEM_TABLE).
    public let fd: FileDescriptor
    private let mapping: MemoryMapping
    /// Regions in the order given.
    public let layout: [RegionLayout]
    /// Front-end virtual address of mapping offset 0.
    public let userAddrBase: UInt64
    /// The device's view: a `GuestMemory` over the same bytes.
    public let guestMemory: GuestMemory
    private var cursorRegion = 0
    private var cursorOffset = 0

    /// Creates regions of `sizes` at guest-physical `bases` (each size a
    /// multiple of the page size for real vhost-user use; any size for tests).
    public init(regions: [(gpa: UInt64, size: Int)], userAddrBase: UInt64 = 0x7f00_0000_0000) throws {
        precondition(!regions.isEmpty)
        let total = regions.reduce(0) { $0 + $1.size }
        let fd = try FileDescriptor.memfd(name: "vireo-guest", size: total)
        mapping = try MemoryMapping(fd: fd, offset: 0, count: total)
        self.fd = fd
        var offset = 0
        var layout: [RegionLayout] = []
        var table: [GuestMemory.Region] = []
        for r in regions {
            layout.append(RegionLayout(guestPhysAddr: r.gpa, size: r.size, mappingOffset: offset))
            table.append(GuestMemory.Region(
                guestPhysAddr: r.gpa, size: UInt64(r.size), userAddr: userAddrBase + UInt64(offset),
                hostAddress: mapping.baseAddress.advanced(by: offset)))
            offset += r.size
        }
        self.layout = layout
        self.userAddrBase = userAddrBase
        guestMemory = try GuestMemory(regions: table)
    }

    /// A single region of `size` bytes at guest-physical `gpa`.
    public convenience init(size: Int, gpa: UInt64 = 0x1_0000) throws {
        try self.init(regions: [(gpa, size)])
    }

    /// The whole mapping (every region's bytes), for bounds checks.
    public var hostBuffer: UnsafeMutableRawBufferPointer { mapping.buffer }

    /// Host pointer for guest-physical `gpa` (must be mapped).
    public func host(_ gpa: UInt64) -> UnsafeMutableRawPointer {
        for r in layout where gpa >= r.guestPhysAddr && gpa - r.guestPhysAddr < UInt64(r.size) {
            // SAFETY: offset inside region r, which lies inside the mapping.
            return mapping.baseAddress.advanced(by: r.mappingOffset + Int(gpa - r.guestPhysAddr))
        }
        preconditionFailure("gpa \(gpa) not mapped")
    }

    /// Front-end virtual address of guest-physical `gpa` (must be mapped).
    public func userAddr(_ gpa: UInt64) -> UInt64 {
        UInt64(UInt(bitPattern: host(gpa)) - UInt(bitPattern: mapping.baseAddress)) + userAddrBase
    }

    /// Allocates `size` bytes aligned to `alignment` inside one region.
    public func allocate(_ size: Int, alignment: Int = 16) -> UInt64 {
        while cursorRegion < layout.count {
            let r = layout[cursorRegion]
            let base = Int(r.guestPhysAddr % UInt64(alignment))
            var off = cursorOffset
            let mis = (base + off) % alignment
            if mis != 0 { off += alignment - mis }
            if off + size <= r.size {
                cursorOffset = off + size
                return r.guestPhysAddr + UInt64(off)
            }
            cursorRegion += 1
            cursorOffset = 0
        }
        preconditionFailure("DriverMemory exhausted allocating \(size) bytes")
    }

    /// Host pointer for `[gpa, gpa+count)` if it lies in one region.
    private func contiguous(_ gpa: UInt64, _ count: Int) -> UnsafeMutableRawPointer? {
        for r in layout where gpa >= r.guestPhysAddr && gpa - r.guestPhysAddr < UInt64(r.size) {
            let off = Int(gpa - r.guestPhysAddr)
            guard count <= r.size - off else { return nil }
            // SAFETY: [off, off+count) is inside region r, inside the mapping.
            return mapping.baseAddress.advanced(by: r.mappingOffset + off)
        }
        return nil
    }

    /// Writes `bytes` at `gpa` (may cross adjacent regions).
    public func write(_ bytes: [UInt8], at gpa: UInt64) {
        if let p = contiguous(gpa, bytes.count) {
            bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return
        }
        for (i, b) in bytes.enumerated() { host(gpa + UInt64(i)).storeBytes(of: b, as: UInt8.self) }
    }

    /// Reads `count` bytes at `gpa` (may cross adjacent regions).
    public func read(_ gpa: UInt64, count: Int) -> [UInt8] {
        if let p = contiguous(gpa, count) {
            return Array(UnsafeRawBufferPointer(start: p, count: count))
        }
        return (0..<count).map { host(gpa + UInt64($0)).load(as: UInt8.self) }
    }

    /// Fills `[gpa, gpa+count)` with `byte`.
    public func fill(_ gpa: UInt64, count: Int, byte: UInt8) {
        if let p = contiguous(gpa, count) {
            p.initializeMemory(as: UInt8.self, repeating: byte, count: count)
            return
        }
        for i in 0..<count { host(gpa + UInt64(i)).storeBytes(of: byte, as: UInt8.self) }
    }
}
