import CVireoSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An owned `mmap(2)` mapping, unmapped when the owner goes away.
///
/// Whoever registers this memory with an RNIC must deregister it first: keep
/// the `MemoryRegion` strictly inside the mapping's lifetime.
public struct MemoryMapping: ~Copyable, @unchecked Sendable {
    /// First mapped byte.
    public let baseAddress: UnsafeMutableRawPointer
    /// Mapped length in bytes.
    public let count: Int

    /// The SIGBUS guard slot (`PeerFaultGuard`), -1 when unguarded.
    private let guardSlot: Int32

    /// Maps `count` bytes of `fd` at `offset` (MAP_SHARED), e.g. a guest memory region.
    ///
    /// With `peerOwner` (a `PeerFaultGuard.newOwner()` tag) the file is a
    /// peer's (guest memory, a front-end's inflight or log fd): if the peer
    /// shrinks it under the mapping, an access faults with SIGBUS, which the
    /// guard contains (zero page, fault counted for that owner) instead of
    /// killing the process.
    public init(
        fd: borrowing FileDescriptor, offset: Int, count: Int,
        writable: Bool = true, populate: Bool = false, peerOwner: UInt64? = nil
    ) throws(SystemError) {
        guard count > 0, offset >= 0 else { throw SystemError(call: "mmap", errno: EINVAL) }
        let prot = writable ? PROT_READ | PROT_WRITE : PROT_READ
        let flags = MAP_SHARED | (populate ? MAP_POPULATE : 0)
        let raw = fd.rawValue
        let p = mmap(nil, count, prot, flags, raw, off_t(offset))
        guard let p, p != MAP_FAILED else { throw SystemError(call: "mmap", errno: errno) }
        var slot: Int32 = -1
        if let peerOwner {
            do throws(SystemError) { slot = try PeerFaultGuard.guardRange(p, count: count, owner: peerOwner) } catch {
                munmap(p, count)
                throw error
            }
        }
        baseAddress = p
        self.count = count
        guardSlot = slot
    }

    /// Anonymous private memory, page aligned and zero filled.
    public init(anonymous count: Int) throws(SystemError) {
        guard count > 0 else { throw SystemError(call: "mmap", errno: EINVAL) }
        let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw SystemError(call: "mmap", errno: errno) }
        baseAddress = p
        self.count = count
        guardSlot = -1
    }

    deinit {
        if guardSlot >= 0 { PeerFaultGuard.unguard(slot: guardSlot) }
        munmap(baseAddress, count)
    }

    /// The mapping as a buffer. The pointer is valid only while `self` is alive.
    public var buffer: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress, count: count)
    }
}

/// The system page size.
public let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
