/// `count` elements allocated and initialized once, released with their owner:
/// an engine's request slots, scratch scatter lists and counters.
///
/// `~Copyable`: exactly one owner, whose end frees the memory; no
/// `deallocate()` to remember, no copy to outlive it. `base` is for the data
/// path's pointer arithmetic (`base + slot`), valid while the array lives.
/// One thread at a time (its owner's).
public struct FixedArray<Element>: ~Copyable {
    /// The first element.
    public let base: UnsafeMutablePointer<Element>
    public let count: Int

    public init(repeating value: Element, count: Int) {
        precondition(count >= 0)
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: value, count: count)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    /// Element `i` (0 ..< count).
    @inline(__always)
    public subscript(i: Int) -> Element {
        unsafeAddress {
            precondition(i >= 0 && i < count, "FixedArray index out of range")
            return UnsafePointer(base + i)
        }
        nonmutating unsafeMutableAddress {
            precondition(i >= 0 && i < count, "FixedArray index out of range")
            return base + i
        }
    }
}
