import CVireoVerbs
import VireoSys

/// A type-2 memory window: remote access to one range of one memory region,
/// for as long as it is bound. Bound by a work request on a queue pair
/// (`SendBatch.bind`), usable only through that queue pair, and made invalid
/// by the peer (`SEND_WITH_INV`) or locally (`SendBatch.localInvalidate`);
/// only then can it be bound again, under a new key (`nextKey`).
///
/// Allocated once (a syscall), reused per request. Release order: windows,
/// then the queue pairs they were bound on, then the regions under them
/// (a region with windows bound over it cannot be deregistered).
public final class MemoryWindow: @unchecked Sendable {
    // SAFETY: owned by one worker thread; the key is plain state.
    /// The window (`ibv_alloc_mw`), or for a fake's window a stand-in carrying its key.
    package let handle: UnsafeMutablePointer<ibv_mw>
    private let isAllocated: Bool
    /// Who made it (a PD or a fake registrar).
    public let registrar: any MemoryRegistrar

    /// Allocates a type-2 window on `pd`.
    public init(pd: ProtectionDomain) throws(FabricError) {
        registrar = pd
        handle = try FabricError.wrap { () throws(SystemError) in
            try nonNull("ibv_alloc_mw") { vireo_ibv_alloc_mw(pd.raw, IBV_MW_TYPE_2) }
        }
        isAllocated = true
    }

    /// A window no device knows, with the key a fake registrar handed out (tests only).
    package init(unallocated registrar: any MemoryRegistrar, key: UInt32) {
        self.registrar = registrar
        handle = .allocate(capacity: 1)
        handle.initialize(to: ibv_mw())
        handle.pointee.rkey = key
        isAllocated = false
    }

    deinit {
        if isAllocated { _ = vireo_ibv_dealloc_mw(handle) } else { handle.deallocate() }
    }

    /// The key of the current (or last) binding: what the peer names, what it invalidates.
    public var key: UInt32 { handle.pointee.rkey }

    /// The key for the next binding: the same index, the next tag in the low byte
    /// (`ibv_inc_rkey`), so a key from an earlier binding never matches again soon.
    public var nextKey: UInt32 { (key & 0xffff_ff00) | ((key &+ 1) & 0xff) }

    /// Records that a bind under `key` was posted (the verbs library leaves the window's
    /// key as it was for type-2 binds; the device looks the window up by it).
    package func bound(key: UInt32) { handle.pointee.rkey = key }
}
