import Synchronization
import Virtio
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// A virtio-blk device backed by an in-process buffer: the stand-in until
/// the RDMA-backed block device exists. Serves IN, OUT, FLUSH, GET_ID,
/// DISCARD and WRITE_ZEROES on up to `numQueues` queues.
///
/// Malformed requests (no header, no status byte) complete with used length
/// 0; requests that are well formed but cannot be served (out of range,
/// misaligned, too many segments) get status IOERR (UNSUPP for unknown
/// types) with used length 1 (the status byte).
public final class MemoryBlockDevice: VhostUserDevice, @unchecked Sendable {
    // SAFETY (Sendable): `storage` is raw bytes shared by the queue workers the
    // way a disk is shared by concurrent requests; other state is atomic or
    // behind a Mutex.

    // virtio-blk request types (virtio 1.x §5.2.6).
    public static let typeIn: UInt32 = 0
    public static let typeOut: UInt32 = 1
    public static let typeFlush: UInt32 = 4
    public static let typeGetID: UInt32 = 8
    public static let typeDiscard: UInt32 = 11
    public static let typeWriteZeroes: UInt32 = 13
    public static let statusOK: UInt8 = 0
    public static let statusIOErr: UInt8 = 1
    public static let statusUnsupported: UInt8 = 2
    // Feature bits (§5.2.3).
    public static let featureSizeMax: UInt64 = 1 << 1
    public static let featureSegMax: UInt64 = 1 << 2
    public static let featureBlockSize: UInt64 = 1 << 6
    public static let featureFlush: UInt64 = 1 << 9
    public static let featureMQ: UInt64 = 1 << 12
    public static let featureDiscard: UInt64 = 1 << 13
    public static let featureWriteZeroes: UInt64 = 1 << 14
    /// Bytes of `struct virtio_blk_config` this device fills.
    public static let configSize = 60
    static let sector: UInt64 = 512

    private let storage: UnsafeMutableRawBufferPointer
    /// The file mapping behind `storage` for a file-backed disk (nil: heap storage, freed in deinit).
    private let fileMapping: FileMappingBox?
    private let capacitySectors = Atomic<UInt64>(0)
    /// Logical block size reported (512 or 4096).
    public let blockSize: UInt32
    public let numQueues: Int
    public let segMax: UInt32
    public let sizeMax: UInt32
    /// Up to 20 bytes returned by GET_ID.
    public let serial: [UInt8]
    public let maxQueueSize: UInt16
    public let workerCount: Int
    private let holding = Atomic<Bool>(false)
    private let held = Mutex<[VhostUserQueueRequest]>([])
    /// Requests handled (all types), for tests and statistics.
    public let requestsHandled = Atomic<UInt64>(0)
    private let regions = Mutex<[GuestMemory.Region]>([])
    private let regionEvents = Mutex<[(added: Bool, gpa: UInt64, size: UInt64)]>([])

    /// A disk of `capacityBytes` (rounded down to 512-byte sectors).
    public convenience init(capacityBytes: Int, blockSize: UInt32 = 512, numQueues: Int = 1, maxQueueSize: UInt16 = 256,
                workerCount: Int = 1, segMax: UInt32 = 126, sizeMax: UInt32 = 1 << 20, serial: String = "vireo-memblk") {
        let bytes = max(Int(Self.sector), capacityBytes / Int(Self.sector) * Int(Self.sector))
        let heap = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 4096)
        heap.initializeMemory(as: UInt8.self, repeating: 0)
        self.init(storage: heap, fileMapping: nil, blockSize: blockSize, numQueues: numQueues,
                  maxQueueSize: maxQueueSize, workerCount: workerCount, segMax: segMax, sizeMax: sizeMax, serial: serial)
    }

    /// A disk whose bytes live in `path` (created sparse at `capacityBytes` if absent,
    /// mapped shared), so its contents survive a restart of this process.
    public static func fileBacked(
        path: String, capacityBytes: Int, blockSize: UInt32 = 512, numQueues: Int = 1, maxQueueSize: UInt16 = 256,
        workerCount: Int = 1, serial: String = "vireo-memblk"
    ) throws(SystemError) -> MemoryBlockDevice {
        let bytes = max(Int(sector), capacityBytes / Int(sector) * Int(sector))
        let box = try FileMappingBox(path: path, size: bytes)
        return MemoryBlockDevice(storage: box.mapping.buffer, fileMapping: box, blockSize: blockSize,
                                 numQueues: numQueues, maxQueueSize: maxQueueSize, workerCount: workerCount,
                                 segMax: 126, sizeMax: 1 << 20, serial: serial)
    }

    private init(storage: UnsafeMutableRawBufferPointer, fileMapping: FileMappingBox?, blockSize: UInt32,
                 numQueues: Int, maxQueueSize: UInt16, workerCount: Int, segMax: UInt32, sizeMax: UInt32,
                 serial: String) {
        precondition(blockSize == 512 || blockSize == 4096, "blk_size must be 512 or 4096")
        self.storage = storage
        self.fileMapping = fileMapping
        let bytes = storage.count
        capacitySectors.store(UInt64(bytes) / Self.sector, ordering: .relaxed)
        self.blockSize = blockSize
        self.numQueues = max(1, numQueues)
        self.maxQueueSize = maxQueueSize
        self.workerCount = max(1, workerCount)
        self.segMax = segMax
        self.sizeMax = sizeMax
        self.serial = Array(serial.utf8.prefix(20))
    }

    deinit { if fileMapping == nil { storage.deallocate() } }

    public var deviceType: VirtioDeviceType { .block }
    public var queueCount: Int { numQueues }
    public var features: UInt64 {
        VhostFeature.version1 | VhostFeature.eventIndex | VhostFeature.indirectDescriptors
            | Self.featureSizeMax | Self.featureSegMax | Self.featureBlockSize | Self.featureFlush
            | Self.featureDiscard | Self.featureWriteZeroes | (numQueues > 1 ? Self.featureMQ : 0)
    }
    public var protocolFeatures: VhostUserProtocolFeatures {
        [.mq, .logSHMFD, .replyAck, .backendReq, .config, .inflightSHMFD, .resetDevice, .configureMemSlots, .status]
    }

    /// Capacity in 512-byte sectors (as reported in the config space).
    public var capacity: UInt64 { capacitySectors.load(ordering: .relaxed) }

    /// Shrinks or grows (up to the allocated size) the visible capacity; then
    /// call `VhostUserServer.notifyConfigChange()`.
    public func resize(sectors: UInt64) {
        capacitySectors.store(min(sectors, UInt64(storage.count) / Self.sector), ordering: .relaxed)
    }

    /// The disk's bytes (tests: check what a guest wrote).
    public var contents: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage) }

    /// While true, requests are taken but not completed (a stand-in for I/O
    /// still in flight on the remote target when the connection drops).
    public func holdCompletions(_ on: Bool) { holding.store(on, ordering: .relaxed) }
    /// Requests currently held.
    public var heldCount: Int { held.withLock { $0.count } }
    /// Regions currently known through the memory callbacks.
    public var knownRegions: [GuestMemory.Region] { regions.withLock { $0 } }
    /// Every add/remove callback, in order.
    public var regionEventLog: [(added: Bool, gpa: UInt64, size: UInt64)] { regionEvents.withLock { $0 } }

    public func configSpace() -> [UInt8] {
        var c = [UInt8](repeating: 0, count: Self.configSize)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { c[at + i] = b } }
        }
        put(capacity, 0)
        put(sizeMax, 8)
        put(segMax, 12)
        put(blockSize, 20)
        put(UInt16(numQueues), 34)
        put(UInt32(capacity > UInt64(UInt32.max) ? UInt32.max : UInt32(capacity)), 36) // max_discard_sectors
        put(UInt32(16), 40)                                                               // max_discard_seg
        put(blockSize / 512, 44)                                                          // discard_sector_alignment
        put(UInt32(capacity > UInt64(UInt32.max) ? UInt32.max : UInt32(capacity)), 48) // max_write_zeroes_sectors
        put(UInt32(16), 52)                                                               // max_write_zeroes_seg
        c[56] = 1                                                                         // write_zeroes_may_unmap
        return c
    }

    public func memoryRegionsAdded(_ r: [GuestMemory.Region]) {
        regions.withLock { $0.append(contentsOf: r) }
        regionEvents.withLock { log in for x in r { log.append((true, x.guestPhysAddr, x.size)) } }
    }

    public func memoryRegionsRemoved(_ r: [GuestMemory.Region]) {
        regions.withLock { list in list.removeAll { x in r.contains { $0.guestPhysAddr == x.guestPhysAddr } } }
        regionEvents.withLock { log in for x in r { log.append((false, x.guestPhysAddr, x.size)) } }
    }

    public func connectionClosed() { held.withLock { $0.removeAll() } }

    public func handle(_ request: VhostUserQueueRequest) {
        requestsHandled.add(1, ordering: .relaxed)
        if holding.load(ordering: .relaxed) {
            held.withLock { $0.append(request) }
            return
        }
        request.complete(writtenLength: serve(request.chain))
    }

    /// Executes one request; returns the used length.
    func serve(_ chain: Chain) -> UInt32 {
        // Header: le32 type, le32 reserved, le64 sector (§5.2.6); status: last writable byte.
        var header = (UInt64(0), UInt64(0))
        // SAFETY: `header` is a 16-byte local.
        let ok = withUnsafeMutableBytes(of: &header) { chain.copyReadable(from: 0, into: $0) }
        guard ok, chain.writableBytes >= 1, let status = chain.writableByte(at: chain.writableBytes - 1) else { return 0 }
        let type = UInt32(truncatingIfNeeded: UInt64(littleEndian: header.0))
        let sector = UInt64(littleEndian: header.1)
        func finish(_ s: UInt8, data: UInt32 = 0) -> UInt32 {
            status.storeBytes(of: s, as: UInt8.self)
            return data + 1
        }
        let dataIn = chain.writableBytes - 1
        let dataOut = chain.readableBytes - 16
        let segments = chain.count
        guard UInt32(segments) <= segMax &+ 2 else { return finish(Self.statusIOErr) }
        switch type {
        case Self.typeIn:
            guard let offset = range(sector: sector, bytes: UInt64(dataIn)) else { return finish(Self.statusIOErr) }
            guard var slice = chain.slice(writable: true, offset: 0, length: dataIn) else { return finish(Self.statusIOErr) }
            var at = offset
            while let s = slice.next() {
                // SAFETY: `at + s.length <= storage.count` (checked by `range`).
                s.hostPointer.copyMemory(from: storage.baseAddress! + at, byteCount: Int(s.length))
                at += Int(s.length)
            }
            return finish(Self.statusOK, data: dataIn)
        case Self.typeOut:
            guard let offset = range(sector: sector, bytes: UInt64(dataOut)) else { return finish(Self.statusIOErr) }
            // SAFETY: the destination lies inside storage (checked by `range`).
            let dst = UnsafeMutableRawBufferPointer(start: storage.baseAddress! + offset, count: Int(dataOut))
            guard chain.copyReadable(from: 16, into: dst) else { return finish(Self.statusIOErr) }
            return finish(Self.statusOK)
        case Self.typeFlush:
            return finish(Self.statusOK)
        case Self.typeGetID:
            let n = min(UInt32(serial.count), dataIn)
            var id = [UInt8](repeating: 0, count: Int(min(dataIn, 20)))
            id.replaceSubrange(0..<Int(n), with: serial[0..<Int(n)])
            // SAFETY: `id` is alive for the copy.
            guard id.withUnsafeBytes({ chain.copyToWritable(at: 0, from: $0) }) else { return finish(Self.statusIOErr) }
            return finish(Self.statusOK, data: UInt32(id.count))
        case Self.typeDiscard, Self.typeWriteZeroes:
            // Segments: le64 sector, le32 num_sectors, le32 flags (§5.2.6.2).
            guard dataOut > 0, dataOut % 16 == 0, dataOut / 16 <= 16 else { return finish(Self.statusIOErr) }
            for i in 0..<(dataOut / 16) {
                var seg = (UInt64(0), UInt64(0))
                // SAFETY: `seg` is a 16-byte local.
                guard withUnsafeMutableBytes(of: &seg, { chain.copyReadable(from: 16 + i * 16, into: $0) }) else {
                    return finish(Self.statusIOErr)
                }
                let start = UInt64(littleEndian: seg.0)
                let count = UInt64(UInt32(truncatingIfNeeded: UInt64(littleEndian: seg.1)))
                let flags = UInt32(truncatingIfNeeded: UInt64(littleEndian: seg.1) >> 32)
                // Discard takes no flags; write zeroes only UNMAP (bit 0).
                guard flags & ~(type == Self.typeWriteZeroes ? 1 : 0) == 0 else { return finish(Self.statusUnsupported) }
                let (bytes, o) = count.multipliedReportingOverflow(by: Self.sector)
                guard !o, let offset = range(sector: start, bytes: bytes) else { return finish(Self.statusIOErr) }
                // SAFETY: inside storage (checked by `range`).
                (storage.baseAddress! + offset).initializeMemory(as: UInt8.self, repeating: 0, count: Int(bytes))
            }
            return finish(Self.statusOK)
        default:
            return finish(Self.statusUnsupported)
        }
    }

    /// Byte offset of `sector` if `[sector*512, +bytes)` fits the capacity and
    /// `bytes` is whole sectors; nil otherwise. Overflow-safe.
    private func range(sector: UInt64, bytes: UInt64) -> Int? {
        guard bytes % Self.sector == 0 else { return nil }
        let (start, o1) = sector.multipliedReportingOverflow(by: Self.sector)
        let (end, o2) = start.addingReportingOverflow(bytes)
        let (cap, o3) = capacity.multipliedReportingOverflow(by: Self.sector)
        guard !o1, !o2, !o3, end <= cap, end <= UInt64(storage.count) else { return nil }
        return Int(start)
    }
}

/// A shared mapping of a file, created sparse at `size` when absent or shorter.
final class FileMappingBox: @unchecked Sendable {
    // SAFETY: the mapping is immutable after init and unmapped only in deinit,
    // after the device that references this box is gone.
    let mapping: MemoryMapping

    init(path: String, size: Int) throws(SystemError) {
        let fd = try FileDescriptor.open(path, flags: O_RDWR | O_CREAT, mode: 0o600)
        if try fd.size() < size { try fd.truncate(to: size) }
        mapping = try MemoryMapping(fd: fd, offset: 0, count: size)
    }
}
