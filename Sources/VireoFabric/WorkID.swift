/// The 64-bit id on every work request (and io_uring operation) Vireo posts,
/// on both sides of the wire: which connection (a table slot and a generation,
/// so a completion that arrives after its connection left is recognised and
/// ignored), what kind of operation, and which buffer or slot.
///
/// Layout: queue slot [36..<52] · generation [20..<36] · kind [16..<20] · index [0..<16].
/// The kinds belong to the engine that posts them: the target's in
/// `VireoTargetCore`, the initiator's queues define their own. An initiator
/// queue has no table (slot 0) and uses its connection epoch as the generation.
public enum WorkID {
    @inlinable @inline(__always)
    public static func make(queue: Int, generation: UInt16, kind: UInt64, index: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: queue & 0xffff) << 36 | UInt64(generation) << 20 | (kind & 0xf) << 16
            | UInt64(truncatingIfNeeded: index & 0xffff)
    }

    @inlinable @inline(__always) public static func queue(_ id: UInt64) -> Int { Int((id >> 36) & 0xffff) }
    @inlinable @inline(__always) public static func generation(_ id: UInt64) -> UInt16 { UInt16((id >> 20) & 0xffff) }
    @inlinable @inline(__always) public static func kind(_ id: UInt64) -> UInt64 { (id >> 16) & 0xf }
    @inlinable @inline(__always) public static func index(_ id: UInt64) -> Int { Int(id & 0xffff) }
}
