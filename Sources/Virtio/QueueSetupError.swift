/// Why a queue could not be set up from its ring addresses.
public enum QueueSetupError: Error, Equatable, Sendable {
    /// Queue size is 0, above 32768, or (split) not a power of two (§2.6, §2.7).
    case invalidSize(UInt16)
    /// A ring area is not mapped, not inside one region, or overflows.
    case ringUnmapped(RingArea)
    /// A ring area violates its alignment (§2.7 table: 16/2/4; §2.8: 16/4/4).
    case misaligned(RingArea)
}
