/// virtio-blk device configuration space (`struct virtio_blk_config`,
/// virtio 1.x §5.2.4), serialized little-endian for vhost-user GET_CONFIG.
///
/// Byte layout: capacity@0 (le64), size_max@8, seg_max@12, geometry@16
/// (le16 cylinders, u8 heads, u8 sectors), blk_size@20, topology@24
/// (u8 physical_block_exp, u8 alignment_offset, le16 min_io_size,
/// le32 opt_io_size), writeback@32, num_queues@34 (le16),
/// max_discard_sectors@36, max_discard_seg@40, discard_sector_alignment@44,
/// max_write_zeroes_sectors@48, max_write_zeroes_seg@52,
/// write_zeroes_may_unmap@56, max_secure_erase_sectors@60,
/// max_secure_erase_seg@64, secure_erase_sector_alignment@68, zoned@72..96.
public struct VirtioBlkConfig: Equatable, Sendable {
    /// Serialized size including the zoned block (zeroed here).
    public static let size = 96

    /// Device size in 512-byte sectors.
    public var capacity: UInt64 = 0
    /// Largest single segment (VIRTIO_BLK_F_SIZE_MAX).
    public var sizeMax: UInt32 = 0
    /// Most segments per request (VIRTIO_BLK_F_SEG_MAX).
    public var segMax: UInt32 = 0
    public var cylinders: UInt16 = 0
    public var heads: UInt8 = 0
    public var sectors: UInt8 = 0
    /// Logical block size (VIRTIO_BLK_F_BLK_SIZE).
    public var blockSize: UInt32 = 512
    /// log2(physical / logical block size) (VIRTIO_BLK_F_TOPOLOGY).
    public var physicalBlockExp: UInt8 = 0
    public var alignmentOffset: UInt8 = 0
    /// Minimum / optimal I/O size in logical blocks.
    public var minIOSize: UInt16 = 0
    public var optIOSize: UInt32 = 0
    /// Cache mode: 0 writethrough, 1 writeback (VIRTIO_BLK_F_CONFIG_WCE).
    public var writeback: UInt8 = 0
    /// Number of request queues (VIRTIO_BLK_F_MQ).
    public var numQueues: UInt16 = 1
    public var maxDiscardSectors: UInt32 = 0
    public var maxDiscardSegments: UInt32 = 0
    public var discardSectorAlignment: UInt32 = 0
    public var maxWriteZeroesSectors: UInt32 = 0
    public var maxWriteZeroesSegments: UInt32 = 0
    public var writeZeroesMayUnmap: UInt8 = 0
    public var maxSecureEraseSectors: UInt32 = 0
    public var maxSecureEraseSegments: UInt32 = 0
    public var secureEraseSectorAlignment: UInt32 = 0

    public init(capacity: UInt64 = 0) { self.capacity = capacity }

    /// The little-endian wire form (`size` bytes).
    public func serialize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { b in
            func put<T: FixedWidthInteger>(_ v: T, _ off: Int) { b.storeBytes(of: v.littleEndian, toByteOffset: off, as: T.self) }
            put(capacity, 0)
            put(sizeMax, 8)
            put(segMax, 12)
            put(cylinders, 16)
            put(heads, 18)
            put(sectors, 19)
            put(blockSize, 20)
            put(physicalBlockExp, 24)
            put(alignmentOffset, 25)
            put(minIOSize, 26)
            put(optIOSize, 28)
            put(writeback, 32)
            put(numQueues, 34)
            put(maxDiscardSectors, 36)
            put(maxDiscardSegments, 40)
            put(discardSectorAlignment, 44)
            put(maxWriteZeroesSectors, 48)
            put(maxWriteZeroesSegments, 52)
            put(writeZeroesMayUnmap, 56)
            put(maxSecureEraseSectors, 60)
            put(maxSecureEraseSegments, 64)
            put(secureEraseSectorAlignment, 68)
        }
        return out
    }

    /// Applies a vhost-user SET_CONFIG write of `bytes` at `offset`: only
    /// `writeback` is driver-writable (§5.2.5, with VIRTIO_BLK_F_CONFIG_WCE).
    /// Returns false if the write touches anything else.
    public mutating func applyWrite(offset: Int, bytes: [UInt8]) -> Bool {
        guard offset == 32, bytes.count == 1 else { return false }
        writeback = bytes[0] == 0 ? 0 : 1
        return true
    }
}
