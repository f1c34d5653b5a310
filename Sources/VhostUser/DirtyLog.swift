import Synchronization
import VireoSys

/// The front-end's dirty-page log (SET_LOG_BASE with LOG_SHMFD): one bit per
/// 4 KiB page of guest-physical memory, set with an atomic OR for every byte
/// the back-end writes into guest memory while `VHOST_F_LOG_ALL` is on.
///
/// Shared read-only (the mapping never changes) between the control thread
/// and every queue worker; a new SET_LOG_BASE makes a new instance.
public final class DirtyLog: @unchecked Sendable {
    // SAFETY (Sendable): the mapping is immutable after init and only
    // written through atomic byte ORs.

    /// Bytes of guest memory per log bit (`VHOST_LOG_PAGE`).
    public static let pageSize: UInt64 = 4096
    private let mapping: MemoryMapping
    private let base: UnsafeMutableRawPointer
    /// Log size in bytes.
    public let size: Int
    /// Writes that fell outside the log (counted, not logged).
    public let outOfRange = Atomic<UInt64>(0)

    /// Maps `size` bytes of `fd` at `offset`. The file must cover them (a
    /// shorter one would SIGBUS on the first logged write); with `peerOwner`
    /// the mapping is guarded against the front-end shrinking it later.
    public init(fd: borrowing FileDescriptor, offset: UInt64, size: UInt64, peerOwner: UInt64? = nil) throws(SystemError) {
        let (end, o) = offset.addingReportingOverflow(size)
        guard !o, size > 0, end <= UInt64(Int.max) else { throw SystemError(call: "mmap(log)", errno: 22) }
        // A log file shorter than offset + size would make the first logged
        // write past its end a SIGBUS.
        guard try fd.backsMapping(of: Int(end)) else {
            throw SystemError(call: "log fd is \(try fd.size()) bytes, offset + size needs \(end)", errno: 22)
        }
        // Map from 0 so an unaligned offset still works.
        mapping = try MemoryMapping(fd: fd, offset: 0, count: Int(end), peerOwner: peerOwner)
        // SAFETY: offset < end = mapping.count.
        base = mapping.baseAddress.advanced(by: Int(offset))
        self.size = Int(size)
    }

    /// Marks every page touched by `[gpa, gpa+length)` dirty. Never traps:
    /// a range that overflows or lies past the log is counted in `outOfRange`.
    ///
    /// Call it after the write it records is complete (for an RDMA write by
    /// the target: after the completion that follows it) and before the used
    /// entry that hands the buffer back is published. A release fence first
    /// (as DPDK's `vhost_log_write`): the front-end, which clears bits and then
    /// copies the pages they name, must never see a bit before the data.
    @inline(__always)
    public func logWrite(gpa: UInt64, length: UInt64) {
        guard length > 0 else { return }
        atomicMemoryFence(ordering: .releasing)
        let (last, o) = gpa.addingReportingOverflow(length - 1)
        guard !o else { outOfRange.add(1, ordering: .relaxed); return }
        var page = gpa / Self.pageSize
        let lastPage = last / Self.pageSize
        while page <= lastPage {
            let byte = page / 8
            guard byte < UInt64(size) else { outOfRange.add(1, ordering: .relaxed); return }
            // SAFETY: byte < size, inside the mapping; Atomic<UInt8> has the layout of UInt8.
            let cell = (base + Int(byte)).assumingMemoryBound(to: Atomic<UInt8>.self)
            cell.pointee.bitwiseOr(UInt8(1) << UInt8(page % 8), ordering: .relaxed)
            page += 1
        }
    }

    /// Whether the bit for the page containing `gpa` is set (tests, diagnostics).
    public func isDirty(gpa: UInt64) -> Bool {
        let page = gpa / Self.pageSize
        guard page / 8 < UInt64(size) else { return false }
        // SAFETY: index checked against size.
        let cell = (base + Int(page / 8)).assumingMemoryBound(to: Atomic<UInt8>.self)
        return cell.pointee.load(ordering: .relaxed) & (UInt8(1) << UInt8(page % 8)) != 0
    }
}
