/// What a target grants a block connection (rdma_cm accept private data, 48 bytes).
///
/// Layout: magic u32 · version u8 · kind u8 · reserved u16 · capacity bytes u64 ·
/// block size u32 · flags u32 · max discard bytes u32 · max write-zeroes bytes u32 ·
/// queue depth u16 · max segments u16 · max I/O bytes u32 · max inline bytes u32 ·
/// optimal I/O bytes u32.
public struct BlockGeometry: Equatable, Sendable {
    public static let size = 48

    public struct Flags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readOnly = Flags(rawValue: 1 << 0)
        public static let flush = Flags(rawValue: 1 << 1)
        public static let discard = Flags(rawValue: 1 << 2)
        public static let writeZeroes = Flags(rawValue: 1 << 3)
        public static let known: Flags = [.readOnly, .flush, .discard, .writeZeroes]
    }

    public var capacityBytes: UInt64
    /// Logical block size: 512 or 4096.
    public var blockSize: UInt32
    public var flags: Flags
    public var maxDiscardBytes: UInt32
    public var maxWriteZeroesBytes: UInt32
    /// Granted (≤ requested).
    public var queueDepth: UInt16
    public var maxSegments: UInt16
    public var maxIOBytes: UInt32
    /// Largest WRITE that may travel inline in the capsule (0: none).
    public var maxInlineBytes: UInt32
    public var optimalIOBytes: UInt32

    public init(capacityBytes: UInt64, blockSize: UInt32, flags: Flags, maxDiscardBytes: UInt32,
                maxWriteZeroesBytes: UInt32, queueDepth: UInt16, maxSegments: UInt16, maxIOBytes: UInt32,
                maxInlineBytes: UInt32, optimalIOBytes: UInt32) {
        self.capacityBytes = capacityBytes
        self.blockSize = blockSize
        self.flags = flags
        self.maxDiscardBytes = maxDiscardBytes
        self.maxWriteZeroesBytes = maxWriteZeroesBytes
        self.queueDepth = queueDepth
        self.maxSegments = maxSegments
        self.maxIOBytes = maxIOBytes
        self.maxInlineBytes = maxInlineBytes
        self.optimalIOBytes = optimalIOBytes
    }

    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            LE.store(p, 0, Wire.magic)
            LE.store(p, 4, Wire.version)
            LE.store(p, 5, Wire.EndpointKind.block.rawValue)
            LE.store(p, 8, capacityBytes)
            LE.store(p, 16, blockSize)
            LE.store(p, 20, flags.rawValue)
            LE.store(p, 24, maxDiscardBytes)
            LE.store(p, 28, maxWriteZeroesBytes)
            LE.store(p, 32, queueDepth)
            LE.store(p, 34, maxSegments)
            LE.store(p, 36, maxIOBytes)
            LE.store(p, 40, maxInlineBytes)
            LE.store(p, 44, optimalIOBytes)
        }
        return b
    }

    /// Decodes the target's accept data and checks it against what was asked
    /// (a target granting more than requested, or nonsense, is refused).
    public init(decoding bytes: [UInt8], requested: ConnectRequest) throws(WireError) {
        guard bytes.count >= Self.size else { throw WireError("accept data of \(bytes.count) bytes, need \(Self.size)") }
        var out: Result<BlockGeometry, WireError> = .failure(WireError("?"))
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!
            guard LE.load(p, 0, as: UInt32.self) == Wire.magic,
                  LE.load(p, 5, as: UInt8.self) == Wire.EndpointKind.block.rawValue else {
                out = .failure(WireError("accept data is not a Vireo block geometry"))
                return
            }
            guard LE.load(p, 4, as: UInt8.self) == Wire.version else {
                out = .failure(WireError("target speaks wire version \(LE.load(p, 4, as: UInt8.self)), we speak \(Wire.version)"))
                return
            }
            let g = BlockGeometry(
                capacityBytes: LE.load(p, 8, as: UInt64.self), blockSize: LE.load(p, 16, as: UInt32.self),
                flags: Flags(rawValue: LE.load(p, 20, as: UInt32.self)),
                maxDiscardBytes: LE.load(p, 24, as: UInt32.self), maxWriteZeroesBytes: LE.load(p, 28, as: UInt32.self),
                queueDepth: LE.load(p, 32, as: UInt16.self), maxSegments: LE.load(p, 34, as: UInt16.self),
                maxIOBytes: LE.load(p, 36, as: UInt32.self), maxInlineBytes: LE.load(p, 40, as: UInt32.self),
                optimalIOBytes: LE.load(p, 44, as: UInt32.self))
            if let problem = g.problem(requested: requested) { out = .failure(WireError(problem)) } else { out = .success(g) }
        }
        self = try out.get()
    }

    /// Why this geometry is unusable for `requested`, or nil.
    func problem(requested r: ConnectRequest) -> String? {
        if blockSize != 512 && blockSize != 4096 { return "block size \(blockSize) is neither 512 nor 4096" }
        if capacityBytes % UInt64(blockSize) != 0 { return "capacity \(capacityBytes) is not a multiple of the block size" }
        if flags.rawValue & ~Flags.known.rawValue != 0 { return "unknown geometry flags 0x\(String(flags.rawValue, radix: 16))" }
        if queueDepth == 0 || queueDepth > r.queueDepth { return "granted queue depth \(queueDepth) (asked \(r.queueDepth))" }
        if maxSegments == 0 || maxSegments > r.maxSegments { return "granted \(maxSegments) segments (asked \(r.maxSegments))" }
        if maxIOBytes < blockSize || maxIOBytes > r.maxIOBytes { return "granted max I/O \(maxIOBytes) (asked \(r.maxIOBytes))" }
        if maxInlineBytes > UInt32(Wire.maxInlineLimit) { return "inline limit \(maxInlineBytes) above \(Wire.maxInlineLimit)" }
        if r.wantsWrite && flags.contains(.readOnly) { return "export is read-only" }
        return nil
    }
}
