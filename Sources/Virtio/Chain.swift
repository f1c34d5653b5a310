/// A descriptor chain taken from a virtqueue, as host memory segments:
/// device-readable segments first, then device-writable ones (virtio 1.x §2.7.4.2).
///
/// Preallocated scratch with a fixed capacity: `popAvail` refills it in place,
/// so taking a request never allocates. A device that keeps requests in
/// flight (e.g. while RDMA moves their data) keeps one `Chain` per in-flight
/// slot. Owned by one thread at a time.
public final class Chain: @unchecked Sendable {
    // SAFETY (Sendable): a Chain is handed between threads only with its
    // request (ownership transfer); it is never accessed concurrently.

    /// One host-contiguous piece of a descriptor's buffer.
    public struct Segment: Equatable, @unchecked Sendable {
        // SAFETY (Sendable): address values into guest memory; see `GuestMemory.Region`.

        /// Where the bytes are in this process.
        public var hostPointer: UnsafeMutableRawPointer
        /// Guest-physical address of the first byte.
        public var guestAddr: UInt64
        /// Length in bytes (nonzero).
        public var length: UInt32
        /// Device-writable (the driver set VIRTQ_DESC_F_WRITE).
        public var isWritable: Bool
        /// Index of the guest memory region (in guest-physical order) the walker found it in:
        /// a hint that lets a device find its own per-region data (a memory key) in O(1).
        public var region: UInt16

        public init(hostPointer: UnsafeMutableRawPointer, guestAddr: UInt64, length: UInt32, isWritable: Bool,
                    region: UInt16 = 0) {
            self.hostPointer = hostPointer
            self.guestAddr = guestAddr
            self.length = length
            self.isWritable = isWritable
            self.region = region
        }
    }

    /// Maximum number of segments.
    public let capacity: Int
    let storage: UnsafeMutablePointer<Segment>

    /// Number of segments.
    public internal(set) var count = 0
    /// Number of device-readable segments (they come first).
    public internal(set) var readableSegmentCount = 0
    /// Total device-readable bytes.
    public internal(set) var readableBytes: UInt32 = 0
    /// Total device-writable bytes.
    public internal(set) var writableBytes: UInt32 = 0
    /// What to pass back in `pushUsed`: the head descriptor index (split) or
    /// the buffer ID (packed), with the number of ring descriptors the chain
    /// used (packed needs it to advance the used position).
    public internal(set) var token = UsedToken(id: 0, descriptorCount: 0)
    /// A device-writable descriptor (even zero-length) was seen.
    var sawWritable = false

    /// The head descriptor index (split) or buffer ID (packed).
    public var head: UInt16 { token.id }

    /// An empty chain able to hold `capacity` segments.
    public init(capacity: Int) {
        precondition(capacity > 0, "Chain capacity must be positive")
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    /// A chain sized for the worst case of a queue of `queueSize` descriptors
    /// where each buffer may cross one region boundary.
    public convenience init(queueSize: UInt16, maxIndirectDescriptors: Int = ChainRules.defaultMaxIndirectDescriptors) {
        self.init(capacity: 2 * max(Int(queueSize), maxIndirectDescriptors) + 2)
    }

    deinit { storage.deallocate() }

    /// Segment `i` (0..<count).
    public subscript(i: Int) -> Segment {
        precondition(i >= 0 && i < count, "segment index out of range")
        return storage[i]
    }

    /// The segments as a buffer, valid until the chain is refilled.
    public var segments: UnsafeBufferPointer<Segment> {
        UnsafeBufferPointer(start: storage, count: count)
    }

    /// Device-readable segments.
    public var readableSegments: UnsafeBufferPointer<Segment> {
        UnsafeBufferPointer(start: storage, count: readableSegmentCount)
    }

    /// Device-writable segments.
    public var writableSegments: UnsafeBufferPointer<Segment> {
        UnsafeBufferPointer(start: storage + readableSegmentCount, count: count - readableSegmentCount)
    }

    /// Forgets all segments (keeps capacity).
    func reset() {
        count = 0
        readableSegmentCount = 0
        readableBytes = 0
        writableBytes = 0
        sawWritable = false
    }
}
