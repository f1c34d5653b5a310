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
