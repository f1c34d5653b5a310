import CVireoSys

/// A fixed set of 64-bit counters that any number of threads bump with relaxed atomic adds
/// (no lock, no allocation; an inlined `lock xadd`), read racily for statistics. For
/// counters several data-path threads share (an export served by several workers);
/// single-writer counters stay plain (`TargetCounters`).
public final class AtomicCounters: @unchecked Sendable {
    // SAFETY: every access to `storage` is an atomic add or load (CVireoSys).
    private let storage: UnsafeMutablePointer<UInt64>
    public let count: Int

    public init(count: Int) {
        precondition(count > 0)
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
    }

    deinit { storage.deallocate() }

    /// Adds `value` to counter `i` (`i < count`, the caller's invariant).
    @inline(__always) public func add(_ i: Int, _ value: UInt64 = 1) { vireo_counter_add(storage + i, value) }

    /// Counter `i` now.
    public subscript(_ i: Int) -> UInt64 { vireo_counter_load(storage + i) }
}
