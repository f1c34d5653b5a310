import CVireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Durations on the data path without a system call: a cycle counter (`vireo_cycles`: the
/// TSC on x86-64) read twice per I/O, converted to nanoseconds with a rate measured against
/// CLOCK_MONOTONIC once per process (`calibrate()`, ~20 ms; the first `now` does it if the
/// daemon did not). `monotonicNanoseconds()` stays the clock for deadlines: it is exact
/// across sleeps and CPU migrations; this one is for statistics only.
public enum CycleClock {
    /// The counter now.
    @inline(__always) public static var now: UInt64 { vireo_cycles() }

    /// Nanoseconds per counter tick.
    public static let nanosecondsPerTick: Double = measure()

    /// Measures the rate now (call at start, before the data path runs).
    public static func calibrate() { _ = nanosecondsPerTick }

    /// Nanoseconds between two readings of `now`.
    @inline(__always) public static func nanoseconds(from start: UInt64, to end: UInt64) -> UInt64 {
        guard end > start else { return 0 }
        return UInt64(Double(end &- start) * nanosecondsPerTick)
    }

    private static func measure() -> Double {
        let t0 = monotonicNanoseconds(), c0 = vireo_cycles()
        var t1 = t0, c1 = c0
        while t1 &- t0 < 20_000_000 {
            usleep(2_000)
            t1 = monotonicNanoseconds()
            c1 = vireo_cycles()
        }
        guard c1 > c0 else { return 1 }
        return Double(t1 &- t0) / Double(c1 &- c0)
    }
}
