import VireoFabric
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

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
    /// A type-2 window: its current key, and while bound its range in one region and its access.
    private struct Window {
        weak var window: MemoryWindow?
        var bound: (regionKey: UInt32, address: UInt64, length: UInt64, access: AccessFlags)?
    }
    private let state: Locked<(next: UInt32, entries: [UInt32: Entry], windows: [UInt32: Window])>

    /// Registrations longer than this fail, as past a memlock limit (ENOMEM).
    private let maxRegistrationBytes: Int

    /// Keys start at `firstKey` (give two sides different ranges so a key of one never resolves on the other).
    public init(firstKey: UInt32 = 0x100, maxRegistrationBytes: Int = .max) {
        state = Locked((firstKey, [:], [:]))
        self.maxRegistrationBytes = maxRegistrationBytes
    }

    /// A window with a fresh key index (its low byte is the tag `nextKey` bumps).
    public func allocateWindow() throws(FabricError) -> MemoryWindow {
        let key = state.withLock { s in
            s.next &+= 1
            return s.next << 8
        }
        let w = MemoryWindow(unallocated: self, key: key)
        state.withLock { $0.windows[key] = Window(window: w, bound: nil) }
        return w
    }

    /// Carries out a bind as a device would (the window is free, of this registrar, the region
    /// is this registrar's, allows binds, and holds the range). False: the bind fails
    /// (IBV_WC_MW_BIND_ERR).
    public func bind(_ b: WorkRequest.Binding) -> Bool {
        state.withLock { s -> Bool in
            guard var w = s.windows[b.windowKey], w.window != nil, w.bound == nil,
                  let r = s.entries[b.regionLKey], r.region != nil, r.access.contains(.windowBind),
                  b.length > 0, b.address >= r.remoteBase, b.address - r.remoteBase <= UInt64(r.length),
                  b.length <= UInt64(r.length) - (b.address - r.remoteBase),
                  b.newKey & 0xffff_ff00 == b.windowKey & 0xffff_ff00 else { return false }
            s.windows[b.windowKey] = nil
            w.bound = (b.regionLKey, b.address, b.length, b.access)
            s.windows[b.newKey] = w
            return true
        }
    }

    /// Invalidates the bound window with `key` (remotely, by a SEND_WITH_INV, or locally).
    /// False: no bound window has that key (IBV_WC_REM_INV_REQ_ERR / a local operation error).
    @discardableResult
    public func invalidate(_ key: UInt32) -> Bool {
        state.withLock { s -> Bool in
            guard var w = s.windows[key], w.bound != nil else { return false }
            w.bound = nil
            s.windows[key] = w
            return true
        }
    }

    /// Whether a bound window has `key` (tests).
    public func isWindowBound(_ key: UInt32) -> Bool { state.withLock { $0.windows[key]?.bound != nil } }

    public func register(address: UnsafeMutableRawPointer, length: Int, access: AccessFlags, iova: UInt64?,
                         owner: AnyObject?) throws(FabricError) -> MemoryRegion {
        guard length > 0 else { throw .invalidArgument(call: "ibv_reg_mr", "a memory region of 0 bytes") }
        guard length <= maxRegistrationBytes else { throw .call(SystemError(call: "ibv_reg_mr", errno: ENOMEM)) }
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
    /// A window's key resolves while it is bound, to its own range only (stricter than soft-RoCE,
    /// which checks a window's key against the whole region under it, as real RNICs do not).
    public func remote(address: UInt64, length: Int, rkey: UInt32, write: Bool) -> UnsafeMutableRawBufferPointer? {
        state.withLock { s -> UnsafeMutableRawBufferPointer? in
            if let w = s.windows[rkey] {
                guard let b = w.bound, b.access.contains(write ? .remoteWrite : .remoteRead),
                      let e = s.entries[b.regionKey], e.region != nil,
                      address >= b.address, address - b.address <= b.length,
                      UInt64(length) <= b.length - (address - b.address) else { return nil }
                let local = e.address + (address - e.remoteBase)
                return UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(local)), count: length)
            }
            guard let e = s.entries[rkey], e.region != nil,
                  e.access.contains(write ? .remoteWrite : .remoteRead), address >= e.remoteBase else { return nil }
            let offset = address - e.remoteBase
            guard offset <= UInt64(e.length), UInt64(length) <= UInt64(e.length) - offset else { return nil }
            let local = e.address + offset
            return UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(local)), count: length)
        }
    }
}
