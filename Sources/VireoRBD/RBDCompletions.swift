/// Preallocated room for the completions one `RBDImage.poll(into:)` takes: each one's
/// tag and result (bytes moved, or a negative errno). Owned by one thread.
public final class RBDCompletions: @unchecked Sendable {
    // SAFETY: used by the one thread that owns it.
    let tags: UnsafeMutablePointer<UInt64>
    let results: UnsafeMutablePointer<Int64>
    /// Most completions taken per poll (librbd's C shim takes ≤ 64).
    public let capacity: Int

    public init(capacity: Int = 64) {
        self.capacity = min(max(capacity, 1), 64)
        tags = .allocate(capacity: self.capacity)
        results = .allocate(capacity: self.capacity)
    }

    deinit {
        tags.deallocate()
        results.deallocate()
    }

    /// Completion `i`'s tag (i < what the poll returned).
    @inline(__always) public func tag(_ i: Int) -> UInt64 { tags[i] }
    /// Completion `i`'s result: bytes, or a negative errno.
    @inline(__always) public func result(_ i: Int) -> Int64 { results[i] }
}
