/// virtio-blk constants and wire formats (virtio 1.x §5.2). All fields are
/// little-endian in guest memory.
public enum VirtioBlk {
    /// Device ID of a block device (§5.2.1).
    public static let deviceID: UInt32 = 2
    /// Sectors are always 512 bytes, whatever blk_size says (§5.2.6).
    public static let sectorSize: UInt64 = 512
    /// Bytes of the GET_ID answer (§5.2.6).
    public static let idBytes = 20

    /// Feature bits (§5.2.3), as masks.
    public enum Feature {
        /// Legacy: requests with barrier (bit 0).
        public static let barrier: UInt64 = 1 << 0
        /// `size_max` is valid (bit 1).
        public static let sizeMax: UInt64 = 1 << 1
        /// `seg_max` is valid (bit 2).
        public static let segMax: UInt64 = 1 << 2
        /// `geometry` is valid (bit 4).
        public static let geometry: UInt64 = 1 << 4
        /// Read-only device (bit 5).
        public static let readOnly: UInt64 = 1 << 5
        /// `blk_size` is valid (bit 6).
        public static let blockSize: UInt64 = 1 << 6
        /// Legacy: SCSI passthrough (bit 7).
        public static let scsi: UInt64 = 1 << 7
        /// FLUSH command (bit 9).
        public static let flush: UInt64 = 1 << 9
        /// `topology` is valid (bit 10).
        public static let topology: UInt64 = 1 << 10
        /// `writeback` is writable (bit 11).
        public static let configWCE: UInt64 = 1 << 11
        /// `num_queues` is valid: multiqueue (bit 12).
        public static let multiqueue: UInt64 = 1 << 12
        /// DISCARD command and limits (bit 13).
        public static let discard: UInt64 = 1 << 13
        /// WRITE_ZEROES command and limits (bit 14).
        public static let writeZeroes: UInt64 = 1 << 14
        /// GET_LIFETIME command (bit 15).
        public static let lifetime: UInt64 = 1 << 15
        /// SECURE_ERASE command and limits (bit 16).
        public static let secureErase: UInt64 = 1 << 16
        /// Zoned device (bit 17).
        public static let zoned: UInt64 = 1 << 17
    }

    /// Request types (§5.2.6).
    public enum RequestType: UInt32, Sendable {
        case `in` = 0
        case out = 1
        case flush = 4
        case getID = 8
        case getLifetime = 10
        case discard = 11
        case writeZeroes = 13
        case secureErase = 14
    }

    /// Status byte values (§5.2.6).
    public enum Status: UInt8, Sendable {
        case ok = 0
        case ioError = 1
        case unsupported = 2
    }

    /// `struct virtio_blk_req` header: le32 type, le32 reserved (ioprio), le64 sector (§5.2.6).
    public struct RequestHeader: Equatable, Sendable {
        public static let size = 16
        public var type: UInt32
        public var ioprio: UInt32
        public var sector: UInt64

        public init(type: UInt32, ioprio: UInt32 = 0, sector: UInt64) {
            self.type = type
            self.ioprio = ioprio
            self.sector = sector
        }

        /// Decodes 16 little-endian bytes.
        public init(bytes p: UnsafeRawBufferPointer) {
            precondition(p.count >= Self.size)
            type = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            ioprio = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            sector = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }

        /// The 16-byte wire form.
        public var bytes: [UInt8] {
            var out = [UInt8](repeating: 0, count: Self.size)
            out.withUnsafeMutableBytes { b in
                b.storeBytes(of: type.littleEndian, toByteOffset: 0, as: UInt32.self)
                b.storeBytes(of: ioprio.littleEndian, toByteOffset: 4, as: UInt32.self)
                b.storeBytes(of: sector.littleEndian, toByteOffset: 8, as: UInt64.self)
            }
            return out
        }
    }

    /// `struct virtio_blk_discard_write_zeroes` (§5.2.6): le64 sector,
    /// le32 num_sectors, le32 flags (bit 0: unmap, WRITE_ZEROES only).
    public struct DiscardWriteZeroesSegment: Equatable, Sendable {
        public static let size = 16
        /// `flags` bit 0: the device may unmap (deallocate) the zeroed range.
        public static let flagUnmap: UInt32 = 1
        public var sector: UInt64
        public var numSectors: UInt32
        public var flags: UInt32

        public init(sector: UInt64, numSectors: UInt32, flags: UInt32 = 0) {
            self.sector = sector
            self.numSectors = numSectors
            self.flags = flags
        }

        /// Decodes 16 little-endian bytes.
        public init(bytes p: UnsafeRawBufferPointer) {
            precondition(p.count >= Self.size)
            sector = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            numSectors = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            flags = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        }

        /// The 16-byte wire form.
        public var bytes: [UInt8] {
            var out = [UInt8](repeating: 0, count: Self.size)
            out.withUnsafeMutableBytes { b in
                b.storeBytes(of: sector.littleEndian, toByteOffset: 0, as: UInt64.self)
                b.storeBytes(of: numSectors.littleEndian, toByteOffset: 8, as: UInt32.self)
                b.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt32.self)
            }
            return out
        }
    }
}
