/// A fixed-capacity FIFO of integers, allocated once (no allocation per push/pop).
public struct IndexRing {
    private let slots: UnsafeMutablePointer<Int>
    public let capacity: Int
    private var head = 0
    public private(set) var count = 0

    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
        slots = .allocate(capacity: self.capacity)
        slots.initialize(repeating: 0, count: self.capacity)
    }

    /// Frees the storage; the ring must not be used afterwards.
    public func deallocate() { slots.deallocate() }

    public var isEmpty: Bool { count == 0 }

    @inline(__always)
    public mutating func push(_ v: Int) {
        precondition(count < capacity, "IndexRing overflow")
        slots[(head + count) % capacity] = v
        count += 1
    }

    @inline(__always)
    public func peek() -> Int? { count == 0 ? nil : slots[head] }

    @inline(__always)
    public mutating func pop() -> Int? {
        guard count > 0 else { return nil }
        let v = slots[head]
        head = (head + 1) % capacity
        count -= 1
        return v
    }
}
