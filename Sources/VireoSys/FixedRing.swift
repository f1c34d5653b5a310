/// A first-in first-out queue of at most `capacity` elements, allocated once:
/// pushes and pops never allocate, lock or copy more than the element. The
/// engines' free lists, waiting lists and held requests are these.
///
/// `~Copyable`: the ring owns its storage and releases it (and any element
/// still in it) when it goes, so no owner has a `deallocate()` to remember and
/// no copy can share or outlive it. One thread at a time (its owner's).
public struct FixedRing<Element>: ~Copyable {
    private let slots: UnsafeMutablePointer<Element>
    /// Most elements it holds (at least 1).
    public let capacity: Int
    private var head = 0
    /// Elements in the ring.
    public private(set) var count = 0

    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
        slots = .allocate(capacity: self.capacity)
    }

    deinit {
        var at = head
        for _ in 0..<count {
            (slots + at).deinitialize(count: 1)
            at = (at + 1) % capacity
        }
        slots.deallocate()
    }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == capacity }

    /// Appends `v`; traps when full (callers size rings for the most they can hold: a full ring is a bug).
    @inline(__always)
    public mutating func push(_ v: consuming Element) {
        precondition(count < capacity, "FixedRing overflow")
        (slots + (head + count) % capacity).initialize(to: v)
        count += 1
    }

    /// The oldest element, or nil when empty.
    @inline(__always)
    public mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let v = (slots + head).move()
        head = (head + 1) % capacity
        count -= 1
        return v
    }

    /// The oldest element without taking it.
    @inline(__always)
    public func peek() -> Element? { count == 0 ? nil : slots[head] }

    /// The `i`-th oldest element (0 ..< count).
    @inline(__always)
    public subscript(i: Int) -> Element {
        precondition(i >= 0 && i < count, "FixedRing index out of range")
        return slots[(head + i) % capacity]
    }

    /// Empties the ring (releasing what it held).
    public mutating func removeAll() {
        while count > 0 {
            (slots + head).deinitialize(count: 1)
            head = (head + 1) % capacity
            count -= 1
        }
        head = 0
    }
}
