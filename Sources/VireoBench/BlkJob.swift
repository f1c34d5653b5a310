/// What `vireo-bench blk` runs: fio-like knobs for a virtio-blk load.
public struct BlkJob: Sendable {
    /// Access pattern.
    public enum Pattern: String, Sendable, CaseIterable {
        case randread, randwrite, read, write, randrw

        /// Random offsets (else sequential per-queue streams).
        public var isRandom: Bool { self == .randread || self == .randwrite || self == .randrw }
    }

    /// vhost-user socket of the backend (the initiator).
    public var socket: String
    public var pattern: Pattern = .randread
    /// Percentage of reads for `randrw` (0...100).
    public var readPercent = 70
    /// Percentage of writes sent as WRITE_ZEROES instead (virtio-blk §5.2.6.2): with `verify`,
    /// the block then reads back as zeros.
    public var zeroesPercent = 0
    /// Percentage of writes sent as DISCARD instead: with `verify`, the block's contents are
    /// unknown until it is written again (a device may keep, zero or drop discarded data).
    public var discardPercent = 0
    /// Bytes per request (a multiple of 512).
    public var blockSize = 4096
    /// Requests kept in flight per queue.
    public var queueDepth = 1
    /// Virtqueues driven, one OS thread each.
    public var queues = 1
    /// Measured seconds (after the ramp).
    public var runtimeSeconds = 10.0
    /// Seconds of load before measuring (excluded from every figure).
    public var rampSeconds = 1.0
    /// Bytes of the disk touched from offset 0 (nil: the whole disk).
    public var spanBytes: UInt64?
    /// Writes carry a pattern derived from (offset, generation); reads check it.
    public var verify = false
    /// Bytes of memfd guest memory.
    public var memoryBytes = 256 << 20
    /// Used-ring polls before sleeping on the call eventfd.
    public var spinIterations = 200
    /// When the backend closes the socket: seconds to keep reconnecting (as a
    /// VMM does) before giving up; 0 makes a disconnect a failure.
    public var reconnectSeconds = 0.0
    /// The run ends early (window closed, then the verify sweep) once this file exists.
    public var stopFile: String?
    /// With `verify`: after the read-back and a FLUSH on every queue, write the generation of
    /// each block's last acknowledged write here (`BlkWrittenMap`), so another reader of the
    /// disk (`vireo-bench check-image`) can check what it holds.
    public var writtenMap: String?
    /// PRNG seed (offsets, read/write mix).
    public var seed: UInt64 = 0x5652_4245_4E43_4821

    public init(socket: String) { self.socket = socket }

    /// Every problem with the knobs, one line each (empty: valid).
    public func problems() -> [String] {
        var p: [String] = []
        if blockSize < 512 || blockSize % 512 != 0 { p.append("--bs must be a positive multiple of 512") }
        if !(1...1024).contains(queueDepth) { p.append("--qd must be in 1...1024") }
        if !(1...64).contains(queues) { p.append("--queues must be in 1...64") }
        if !(runtimeSeconds > 0) { p.append("--runtime must be positive") }
        if !(rampSeconds >= 0) { p.append("--ramp must be ≥ 0") }
        if !(0...100).contains(readPercent) { p.append("--read-percent must be in 0...100") }
        if !(0...100).contains(zeroesPercent) || !(0...100).contains(discardPercent) || zeroesPercent + discardPercent > 100 {
            p.append("--zeroes-percent and --discard-percent must be in 0...100 and add up to at most 100")
        }
        if let s = spanBytes, s == 0 { p.append("--span must be positive") }
        if spinIterations < 0 { p.append("--spin must be ≥ 0") }
        if !(reconnectSeconds >= 0) { p.append("--reconnect must be ≥ 0") }
        return p
    }
}
