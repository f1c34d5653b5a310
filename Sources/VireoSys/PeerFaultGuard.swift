import CVireoSys
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Contains SIGBUS from mappings of files a peer controls. A VMM that
/// truncates its guest memory memfd, or the log or inflight fd it sent,
/// would otherwise kill the whole process (every VM's devices) on the next
/// access. Guarded mappings (`MemoryMapping(fd:...peerOwner:)`) get a zero
/// page over the faulting page instead, and the fault is counted against
/// the owner's tag, so the owner (one vhost-user connection) can fail itself.
public enum PeerFaultGuard {
    private static let owners = Atomic<UInt64>(0)

    /// A new owner tag (one per connection).
    public static func newOwner() -> UInt64 { owners.add(1, ordering: .relaxed).newValue }

    /// Faults contained so far in the whole process (one relaxed load: a
    /// worker compares it each loop, then asks `faults(owner:)` on a change).
    @inline(__always)
    public static var totalFaults: UInt64 { vireo_sigbus_faults_total() }

    /// Faults contained in the live mappings of `owner`.
    public static func faults(owner: UInt64) -> UInt64 { vireo_sigbus_guard_faults(owner) }

    /// Installs the handler (once) and guards `[base, base + count)`.
    static func guardRange(_ base: UnsafeMutableRawPointer, count: Int, owner: UInt64) throws(SystemError) -> Int32 {
        try syscallRetrying("sigaction(SIGBUS)") { vireo_sigbus_guard_install() }
        let slot = vireo_sigbus_guard_add(base, count, owner)
        guard slot >= 0 else { throw SystemError(call: "SIGBUS guard: all guard slots in use", errno: ENOSPC) }
        return slot
    }

    static func unguard(slot: Int32) { vireo_sigbus_guard_remove(slot) }
}
