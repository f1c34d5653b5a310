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
    // behind a `Locked`.

    /// Segments per DISCARD / WRITE_ZEROES request (config max_*_seg).
    static let maxRangeSegments: UInt32 = 16
    private static let sector = VirtioBlk.sectorSize

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
    private let holdingFlushes = Atomic<Bool>(true)
    private let held = Locked<[VhostUserQueueRequest]>([])
    /// `VhostUserDevice.restartRecordPath` (tests; QEMU's vhost-user-blk keeps
    /// its own INFLIGHT_SHMFD region). Set before serving.
    public var restartRecordPath: String?
    /// Requests handled (all types), for tests and statistics.
    public let requestsHandled = Atomic<UInt64>(0)
    private let regions = Locked<[GuestMemory.Region]>([])
    private let regionEvents = Locked<[(added: Bool, gpa: UInt64, size: UInt64)]>([])

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
        VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.indirectDesc | VirtioFeatures.ringPacked
            | VirtioBlk.Feature.sizeMax | VirtioBlk.Feature.segMax | VirtioBlk.Feature.blockSize | VirtioBlk.Feature.flush
            | VirtioBlk.Feature.discard | VirtioBlk.Feature.writeZeroes | (numQueues > 1 ? VirtioBlk.Feature.multiqueue : 0)
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
    /// `exceptFlushes`: FLUSH requests still complete, so completions come
    /// out of order (a packed ring's used descriptors then overwrite ring
    /// slots of held chains).
    public func holdCompletions(_ on: Bool, exceptFlushes: Bool = false) {
        holdingFlushes.store(!exceptFlushes, ordering: .relaxed)
        holding.store(on, ordering: .relaxed)
    }
    /// Requests currently held.
    public var heldCount: Int { held.withLock { $0.count } }
    /// Regions currently known through the memory callbacks.
    public var knownRegions: [GuestMemory.Region] { regions.withLock { $0 } }
    /// Every add/remove callback, in order.
    public var regionEventLog: [(added: Bool, gpa: UInt64, size: UInt64)] { regionEvents.withLock { $0 } }

    /// The configuration space (`struct virtio_blk_config`, §5.2.4).
    public var config: VirtioBlkConfig {
        let cap = capacity
        let capped = UInt32(clamping: cap)
        var c = VirtioBlkConfig(capacity: cap)
        c.sizeMax = sizeMax
        c.segMax = segMax
        c.blockSize = blockSize
        c.numQueues = UInt16(clamping: numQueues)
        c.maxDiscardSectors = capped
        c.maxDiscardSegments = Self.maxRangeSegments
        c.discardSectorAlignment = blockSize / 512
        c.maxWriteZeroesSectors = capped
        c.maxWriteZeroesSegments = Self.maxRangeSegments
        c.writeZeroesMayUnmap = 1
        return c
    }

    public func configSpace() -> [UInt8] { config.serialize() }

    public func memoryRegionsAdded(_ r: [GuestMemory.Region]) {
        regions.withLock { $0.append(contentsOf: r) }
        regionEvents.withLock { log in for x in r { log.append((true, x.guestPhysAddr, x.size)) } }
    }

    public func memoryRegionsRemoved(_ r: [GuestMemory.Region]) {
        regions.withLock { list in list.removeAll { x in r.contains { $0.guestPhysAddr == x.guestPhysAddr } } }
        regionEvents.withLock { log in for x in r { log.append((false, x.guestPhysAddr, x.size)) } }
    }

    public func connectionClosed() { held.withLock { $0.removeAll() } }

    /// A quiesce's drain ran out of time: held requests fail with IOERR now
    /// (as a remote disk cuts off what its target still holds).
    public func abortOutstanding(worker: Int) {
        let aborted = held.withLock { h -> [VhostUserQueueRequest] in defer { h.removeAll() }; return h }
        for r in aborted {
            r.complete(writtenLength: BlkRequest.writeStatus(.ioError, to: r.chain))
        }
    }

    public func handle(_ request: VhostUserQueueRequest) {
        requestsHandled.add(1, ordering: .relaxed)
        if holding.load(ordering: .relaxed), holdingFlushes.load(ordering: .relaxed) || !Self.isFlush(request.chain) {
            held.withLock { $0.append(request) }
            return
        }
        request.complete(writtenLength: serve(request.chain))
    }

    /// Whether the chain's header (virtio 1.x §5.2.6) asks for a FLUSH.
    private static func isFlush(_ chain: Chain) -> Bool {
        guard let h = chain.readableSegments.first, h.length >= 4 else { return false }
        return UInt32(littleEndian: UnsafeRawPointer(h.hostPointer).loadUnaligned(as: UInt32.self)) == VirtioBlk.RequestType.flush.rawValue
    }

    /// What requests are validated against (capacity can change with `resize`).
    var limits: BlkDeviceLimits {
        BlkDeviceLimits(capacitySectors: capacity, flush: true, discard: true, maxDiscardSegments: Self.maxRangeSegments,
                        writeZeroes: true, maxWriteZeroesSegments: Self.maxRangeSegments)
    }

    /// Executes one request; returns the used length.
    func serve(_ chain: Chain) -> UInt32 {
        // seg_max bounds the data segments; header and status add two (§5.2.4).
        let tooManySegments = UInt32(clamping: chain.count) > segMax &+ 2
        let req: BlkRequest
        do {
            req = try BlkRequest.parse(chain, limits: limits)
        } catch {
            switch error {
            case .missingStatus, .headerTooShort:
                // §5.2.6: without header and status byte there is nothing to answer.
                return 0
            default:
                return BlkRequest.writeStatus(tooManySegments ? .ioError : error.status, to: chain)
            }
        }
        func finish(_ s: VirtioBlk.Status) -> UInt32 {
            req.complete(chain, status: s)
            return req.usedLength
        }
        guard !tooManySegments else { return finish(.ioError) }
        switch req.type {
        case .in:
            guard let offset = byteOffset(sector: req.sector, bytes: req.dataLength) else { return finish(.ioError) }
            var slice = req.dataSlice(in: chain)
            var at = offset
            while let s = slice.next() {
                // SAFETY: `[offset, offset + dataLength)` lies inside storage (checked by `byteOffset`).
                s.hostPointer.copyMemory(from: storage.baseAddress! + at, byteCount: Int(s.length))
                at += Int(s.length)
            }
            return finish(.ok)
        case .out:
            guard let offset = byteOffset(sector: req.sector, bytes: req.dataLength) else { return finish(.ioError) }
            // SAFETY: the destination lies inside storage (checked by `byteOffset`).
            let dst = UnsafeMutableRawBufferPointer(start: storage.baseAddress! + offset, count: Int(req.dataLength))
            guard chain.copyReadable(from: req.dataOffset, into: dst) else { return finish(.ioError) }
            return finish(.ok)
        case .flush:
            return finish(.ok)
        case .getID:
            // §5.2.6: the ID string, NUL-padded when shorter than 20 bytes.
            var id: (UInt64, UInt64, UInt32) = (0, 0, 0)
            let ok = withUnsafeMutableBytes(of: &id) { raw -> Bool in
                for (i, b) in serial.prefix(VirtioBlk.idBytes).enumerated() { raw[i] = b }
                // SAFETY: `id` is a 20-byte local; dataLength <= 20 (parse).
                return chain.copyToWritable(at: req.dataOffset,
                                            from: UnsafeRawBufferPointer(rebasing: raw[0..<Int(req.dataLength)]))
            }
            return finish(ok ? .ok : .ioError)
        case .discard, .writeZeroes:
            for i in 0..<req.segmentCount {
                guard let seg = req.segment(i, in: chain) else { return finish(.ioError) }
                // §5.2.6.2: discard takes no flags; write zeroes only UNMAP.
                let allowed = req.type == .writeZeroes ? VirtioBlk.DiscardWriteZeroesSegment.flagUnmap : 0
                guard seg.flags & ~allowed == 0 else { return finish(.unsupported) }
                let bytes = UInt64(seg.numSectors) * Self.sector   // < 2^41: no overflow
                guard (try? BlkRequest.checkRange(sector: seg.sector, sectors: UInt64(seg.numSectors), limits: limits)) != nil,
                      let offset = byteOffset(sector: seg.sector, bytes: bytes)
                else { return finish(.ioError) }
                // SAFETY: inside storage (checked by `byteOffset`).
                (storage.baseAddress! + offset).initializeMemory(as: UInt8.self, repeating: 0, count: Int(bytes))
            }
            return finish(.ok)
        case .getLifetime, .secureErase:
            return finish(.unsupported)   // parse rejects these; kept for exhaustiveness
        }
    }

    /// Byte offset of `sector` if `[sector*512, +bytes)` lies inside the
    /// storage; nil otherwise. Overflow-safe. (`BlkRequest.parse` has already
    /// checked the range against the capacity; this guards the buffer itself
    /// against a concurrent `resize`.)
    private func byteOffset<T: FixedWidthInteger>(sector: UInt64, bytes: T) -> Int? {
        let (start, o1) = sector.multipliedReportingOverflow(by: Self.sector)
        let (end, o2) = start.addingReportingOverflow(UInt64(bytes))
        guard !o1, !o2, end <= UInt64(storage.count) else { return nil }
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
