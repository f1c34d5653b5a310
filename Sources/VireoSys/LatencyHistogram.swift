/// Durations counted in power-of-two buckets for a Prometheus histogram: bucket i holds the
/// samples of at most 2^(14+i) ns (16.4 µs, 32.8 µs, … 8.6 s), the last one everything
/// longer. Recording is two relaxed atomic adds (the bucket, the sum), no lock, no
/// allocation, no system call: cheap enough for every I/O.
public final class LatencyHistogram: Sendable {
    /// Finite buckets (upper bounds 2^14 … 2^33 ns); one more for +Inf.
    public static let finiteBuckets = 20
    private let counters = AtomicCounters(count: LatencyHistogram.finiteBuckets + 2)
    private static var sumIndex: Int { finiteBuckets + 1 }

    public init() {}

    /// Counts one duration of `nanoseconds`.
    @inline(__always) public func record(nanoseconds: UInt64) {
        let scaled = (nanoseconds &- 1) >> 14
        let i = nanoseconds == 0 ? 0 : min(UInt64.bitWidth - scaled.leadingZeroBitCount, Self.finiteBuckets)
        counters.add(i)
        counters.add(Self.sumIndex, nanoseconds)
    }

    /// Upper bound of finite bucket `i`, in seconds.
    public static func upperBoundSeconds(_ i: Int) -> Double { Double(UInt64(1) << (14 + i)) / 1e9 }

    /// A snapshot: cumulative counts per finite bucket (as Prometheus wants them), the total
    /// count and the sum in nanoseconds (racy reads: a live, approximate view).
    public var snapshot: (cumulative: [UInt64], count: UInt64, sumNanoseconds: UInt64) {
        var cumulative: [UInt64] = []
        var running: UInt64 = 0
        for i in 0..<Self.finiteBuckets {
            running &+= counters[i]
            cumulative.append(running)
        }
        return (cumulative, running &+ counters[Self.finiteBuckets], counters[Self.sumIndex])
    }
}
