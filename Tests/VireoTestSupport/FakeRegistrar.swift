import VireoFabric
import VireoSys

/// A `MemoryRegistrar` with no device: it hands out keys for memory the test owns
/// and resolves them again when a `FakeWorkQueue` moves data, with the checks an
/// RNIC makes (the key is known and still registered, the range lies inside the
/// region, the access was granted). A region that was released no longer resolves,
/// as after `ibv_dereg_mr`.
public final class FakeRegistrar: MemoryRegistrar, @unchecked Sendable {
    // SAFETY: the table is behind its lock; regions are weak, so the registrar never keeps memory alive.
    private struct Entry {
        weak var region: MemoryRegion?
        let address: UInt64
        let length: Int
        let remoteBase: UInt64
        let access: AccessFlags
    }
    private let state: Locked<(next: UInt32, entries: [UInt32: Entry])>

    /// Keys start at `firstKey` (give two sides different ranges so a key of one never resolves on the other).
    public init(firstKey: UInt32 = 0x100) {
        state = Locked((firstKey, [:]))
    }

    public func register(address: UnsafeMutableRawPointer, length: Int, access: AccessFlags, iova: UInt64?,
                         owner: AnyObject?) throws(FabricError) -> MemoryRegion {
        guard length > 0 else { throw .invalidArgument(call: "ibv_reg_mr", "a memory region of 0 bytes") }
        let key = state.withLock { s in
            s.next &+= 1
            return s.next
        }
        let region = MemoryRegion(unregistered: self, address: address, length: length, access: access, iova: iova,
                                  owner: owner, lkey: key, rkey: key)
        state.withLock { s in
            s.entries[key] = Entry(region: region, address: UInt64(UInt(bitPattern: address)), length: length,
                                   remoteBase: region.remoteBase, access: access)
        }
        return region
    }

    /// Regions registered and still alive.
    public var liveRegions: Int { state.withLock { s in s.entries.values.filter { $0.region != nil }.count } }

    /// The local bytes `sge` names, or nil when its lkey is unknown or released, or its range
    /// is outside the region (an RNIC's local protection error). As with `ibv_reg_mr_iova`,
    /// SGE addresses are in the region's iova space (its local address unless an iova was given).
    public func local(_ sge: ScatterGatherElement) -> UnsafeMutableRawBufferPointer? {
        state.withLock { s -> UnsafeMutableRawBufferPointer? in
            guard let e = s.entries[sge.lkey], e.region != nil, sge.address >= e.remoteBase else { return nil }
            let offset = sge.address - e.remoteBase
            guard offset <= UInt64(e.length), UInt64(sge.length) <= UInt64(e.length) - offset else { return nil }
            return UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(e.address + offset)),
                                                 count: Int(sge.length))
        }
    }

    /// The bytes a peer's RDMA READ (`write` false) or WRITE names, or nil when the rkey is
    /// unknown or released, the range is outside the region, or the access was not granted
    /// (an RNIC's remote access error).
    public func remote(address: UInt64, length: Int, rkey: UInt32, write: Bool) -> UnsafeMutableRawBufferPointer? {
        state.withLock { s -> UnsafeMutableRawBufferPointer? in
            guard let e = s.entries[rkey], e.region != nil,
                  e.access.contains(write ? .remoteWrite : .remoteRead), address >= e.remoteBase else { return nil }
            let offset = address - e.remoteBase
            guard offset <= UInt64(e.length), UInt64(length) <= UInt64(e.length) - offset else { return nil }
            let local = e.address + offset
            return UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(local)), count: length)
        }
    }
}
