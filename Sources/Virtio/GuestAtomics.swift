import Synchronization

// Atomic access to fields of shared guest memory (ring indices, flags, event
// words). Guest memory is raw bytes written concurrently by the guest's
// driver, so these go through Swift `Synchronization.Atomic` viewed at the
// raw address: `Atomic<UInt16>` has the size and alignment of `UInt16` and
// lowers to plain loads/stores plus the ordering the call asks for (on x86-64
// an acquire load or release store is a plain `mov`; on arm64 `ldar`/`stlr`).
// Every field passed here was checked 2-byte aligned when the ring was set up.
// Values in guest memory are little-endian (virtio 1.x §1.4).

/// Acquire load of a little-endian `UInt16` in guest memory.
@inline(__always)
func guestLoadAcquire16(_ p: UnsafeMutableRawPointer) -> UInt16 {
    // SAFETY: `p` is 2-byte aligned inside a live guest memory region (checked at ring setup).
    UInt16(littleEndian: p.assumingMemoryBound(to: Atomic<UInt16>.self).pointee.load(ordering: .acquiring))
}

/// Relaxed load of a little-endian `UInt16` in guest memory.
@inline(__always)
func guestLoadRelaxed16(_ p: UnsafeMutableRawPointer) -> UInt16 {
    // SAFETY: as `guestLoadAcquire16`.
    UInt16(littleEndian: p.assumingMemoryBound(to: Atomic<UInt16>.self).pointee.load(ordering: .relaxed))
}

/// Release store of a little-endian `UInt16` into guest memory.
@inline(__always)
func guestStoreRelease16(_ p: UnsafeMutableRawPointer, _ value: UInt16) {
    // SAFETY: as `guestLoadAcquire16`.
    p.assumingMemoryBound(to: Atomic<UInt16>.self).pointee.store(value.littleEndian, ordering: .releasing)
}

/// Relaxed store of a little-endian `UInt16` into guest memory.
@inline(__always)
func guestStoreRelaxed16(_ p: UnsafeMutableRawPointer, _ value: UInt16) {
    // SAFETY: as `guestLoadAcquire16`.
    p.assumingMemoryBound(to: Atomic<UInt16>.self).pointee.store(value.littleEndian, ordering: .relaxed)
}

/// Full (sequentially consistent) fence: orders earlier stores before later
/// loads, the one reordering acquire/release does not forbid (StoreLoad).
@inline(__always)
func fullMemoryFence() {
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}

/// Plain little-endian loads of descriptor fields (after an acquire on the index or flags).
extension UnsafeRawPointer {
    @inline(__always) func le16(_ offset: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    @inline(__always) func le32(_ offset: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    @inline(__always) func le64(_ offset: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
}

extension UnsafeMutableRawPointer {
    @inline(__always) func storeLE16(_ v: UInt16, at offset: Int) { storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt16.self) }
    @inline(__always) func storeLE32(_ v: UInt32, at offset: Int) { storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self) }
    @inline(__always) func storeLE64(_ v: UInt64, at offset: Int) { storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt64.self) }
}

/// Atomic access to little-endian 16-bit fields of shared guest memory, for
/// code outside this module (driver harness, vhost-user inflight tracking).
/// `p` must be 2-byte aligned and inside live guest memory.
public enum GuestAtomics {
    /// Acquire load.
    @inline(__always) public static func loadAcquire16(_ p: UnsafeMutableRawPointer) -> UInt16 { guestLoadAcquire16(p) }
    /// Relaxed load.
    @inline(__always) public static func loadRelaxed16(_ p: UnsafeMutableRawPointer) -> UInt16 { guestLoadRelaxed16(p) }
    /// Release store.
    @inline(__always) public static func storeRelease16(_ p: UnsafeMutableRawPointer, _ v: UInt16) { guestStoreRelease16(p, v) }
    /// Relaxed store.
    @inline(__always) public static func storeRelaxed16(_ p: UnsafeMutableRawPointer, _ v: UInt16) { guestStoreRelaxed16(p, v) }
    /// Full (StoreLoad) fence.
    @inline(__always) public static func fullFence() { fullMemoryFence() }
}
