/// The 64-bit ids on work requests and io_uring operations: which connection
/// (table index + generation, so completions of a dropped connection are
/// recognised and ignored), what kind of operation, and which buffer or slot.
///
/// Layout: queue index [36..<52] · generation [20..<36] · kind [16..<20] · index [0..<16].
/// Shared by the block target (kinds 1-6) and the packet target (kinds 8-10).
public enum WorkID {
    /// A receive buffer got a capsule (index: receive buffer).
    public static let receive: UInt64 = 1
    /// The last RDMA READ of a WRITE's segments (index: request slot).
    public static let transfer: UInt64 = 2
    /// A response SEND (index: request slot).
    public static let response: UInt64 = 3
    /// An unsignaled RDMA WRITE of READ data (index: request slot; completes only on error).
    public static let data: UInt64 = 4
    /// An io_uring storage operation (index: request slot).
    public static let storage: UInt64 = 5
    /// A zero-length RDMA WRITE probing an idle peer (no buffer; index 0).
    public static let probe: UInt64 = 6
    /// Packet target: a receive buffer got a frame or a credit message (index: receive buffer).
    public static let packetReceive: UInt64 = 8
    /// Packet target: a frame SEND (index: send buffer).
    public static let packetSend: UInt64 = 9
    /// Packet target: a credit-only SEND (no buffer).
    public static let packetCredit: UInt64 = 10

    @inlinable @inline(__always)
    public static func make(queue: Int, generation: UInt16, kind: UInt64, index: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: queue & 0xffff) << 36 | UInt64(generation) << 20 | (kind & 0xf) << 16
            | UInt64(truncatingIfNeeded: index & 0xffff)
    }

    @inlinable @inline(__always) public static func queue(_ id: UInt64) -> Int { Int((id >> 36) & 0xffff) }
    @inlinable @inline(__always) public static func generation(_ id: UInt64) -> UInt16 { UInt16((id >> 20) & 0xffff) }
    @inlinable @inline(__always) public static func kind(_ id: UInt64) -> UInt64 { (id >> 16) & 0xf }
    @inlinable @inline(__always) public static func index(_ id: UInt64) -> Int { Int(id & 0xffff) }
}

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
