/// A fast, non-cryptographic PRNG (xorshift64*) for offsets and read/write
/// mixes on the load generator's hot path: no allocation, no locks.
public struct XorShift: Sendable {
    private var state: UInt64

    /// `seed` 0 is replaced (xorshift needs a non-zero state).
    public init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// A value in `0..<bound` (`bound` > 0; multiply-shift, negligible bias).
    @inline(__always)
    public mutating func next(below bound: UInt64) -> UInt64 {
        (next().multipliedFullWidth(by: bound)).high
    }
}
