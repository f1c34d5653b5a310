import VireoUring
import Logging
import VireoRBD
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// The bytes behind one export: a regular file, a block device, memory, or an RBD image.
///
/// Files and devices are read and written by the workers' io_uring rings
/// through `fd`; memory exports are copied to and from directly; an RBD image is
/// driven by librbd's asynchronous calls from the one worker it is pinned to
/// (`pin(worker:eventFD:)`). Owned by the daemon; workers share it read-only
/// (positional I/O needs no lock).
public final class BlockStore: @unchecked Sendable {
    // SAFETY: immutable after init. Concurrent positional I/O on one fd is safe,
    // and memory exports are only touched by the worker serving a command.

    /// What backs the store.
    public enum Kind: Equatable, Sendable {
        case file(direct: Bool)
        case device(direct: Bool)
        case memory
        case rbd
    }

    public let kind: Kind
    /// Capacity in bytes (a multiple of the block size).
    public let capacity: UInt64
    /// The open file or device; -1 for memory.
    public let fd: Int32
    /// The memory of a memory export, nil otherwise.
    public let memory: UnsafeMutableRawPointer?
    /// DISCARD (punch hole) and WRITE_ZEROES are offered.
    public let supportsDiscard: Bool
    public let supportsWriteZeroes: Bool

    /// An RBD export's open image, nil otherwise.
    public let image: RBDImage?
    /// The worker an RBD image's operations start and complete on (nil: not pinned yet).
    private let home = Locked<Int?>(nil)

    private let owned: FileDescriptorBox?
    private let mapping: MappingOwner?

    /// Opens (or creates) the backing of `config`; an RBD image through `ceph`'s connections.
    public init(config: ExportConfig, ceph: CephClusters = CephClusters(), logger: Logger) throws(SystemError) {
        let block = UInt64(config.blockSize)
        switch config.backing {
        case .rbd(let spec):
            guard let cluster = ceph.cluster(named: config.cephCluster) else {
                throw SystemError(call: "export \(config.name): ceph_cluster '\(config.cephCluster ?? "")' [not configured]", errno: ENOENT)
            }
            let opened = try ceph.open(spec, cluster: cluster, timeout: config.ioTimeoutSeconds, readOnly: config.readOnly)
            // A gateway group relies on the exclusive lock: one gateway writes at a time, and a
            // dead one is fenced (blocklisted) before another writes (docs/ceph.md).
            if let group = config.group, !config.readOnly, try !opened.hasExclusiveLock() {
                throw SystemError(call: "export \(config.name): group \(group) needs the image's exclusive-lock feature [rbd feature enable \(spec) exclusive-lock]", errno: EINVAL)
            }
            image = opened
            owned = nil
            mapping = nil
            memory = nil
            fd = -1
            kind = .rbd
            capacity = try opened.size() / block * block
            supportsDiscard = !opened.isReadOnly
            supportsWriteZeroes = !opened.isReadOnly
        case .memory:
            let size = config.size ?? 0
            guard size > 0, size <= UInt64(Int.max) else { throw SystemError(call: "mmap(export \(config.name))", errno: EINVAL) }
            let m = try MappingOwner(count: Int(size))
            mapping = m
            image = nil
            memory = m.mapping.baseAddress
            owned = nil
            fd = -1
            kind = .memory
            capacity = size / block * block
            supportsDiscard = true
            supportsWriteZeroes = true
        case .file(let path):
            var st = stat()
            let exists = stat(path, &st) == 0
            if !exists && config.size == nil {
                throw SystemError(call: "open(\(path)) [no such file, and no size to create it]", errno: ENOENT)
            }
            let access = config.readOnly ? O_RDONLY : O_RDWR
            let create = exists || config.readOnly ? 0 : O_CREAT
            let (box, direct) = try Self.openPreferringDirect(path, flags: access | create, logger: logger)
            if let size = config.size, UInt64(try box.fd.size()) < size {
                guard !config.readOnly else {
                    throw SystemError(call: "open(\(path)) [read-only file smaller than size \(size)]", errno: EINVAL)
                }
                // Sparse: ftruncate allocates nothing.
                try box.fd.truncate(to: Int(size))
            }
            let fileSize = UInt64(try box.fd.size())
            owned = box
            fd = box.fd.rawValue
            image = nil
            mapping = nil
            memory = nil
            kind = .file(direct: direct)
            capacity = min(config.size ?? fileSize, fileSize) / block * block
            supportsDiscard = !config.readOnly
            supportsWriteZeroes = !config.readOnly
        case .device(let path):
            let access = config.readOnly ? O_RDONLY : O_RDWR
            let (box, direct) = try Self.openPreferringDirect(path, flags: access, logger: logger)
            let bytes: UInt64
            do { bytes = try StorageFile.blockDeviceSize(box.fd.rawValue) } catch {
                throw SystemError(call: "ioctl(\(path), BLKGETSIZE64)", errno: error.errno)
            }
            owned = box
            fd = box.fd.rawValue
            image = nil
            mapping = nil
            memory = nil
            kind = .device(direct: direct)
            capacity = bytes / block * block
            supportsDiscard = !config.readOnly
            supportsWriteZeroes = !config.readOnly
        }
        if capacity == 0 { throw SystemError(call: "export \(config.name): capacity below one block", errno: EINVAL) }
    }

    /// Opens with O_DIRECT, or without it (logging once) where the filesystem refuses it (tmpfs).
    private static func openPreferringDirect(
        _ path: String, flags: Int32, logger: Logger
    ) throws(SystemError) -> (FileDescriptorBox, Bool) {
        do {
            return (FileDescriptorBox(try FileDescriptor.open(path, flags: flags | StorageFile.directIO, mode: 0o600)), true)
        } catch where error.errno == EINVAL || error.errno == EOPNOTSUPP {
            logger.notice("\(path): the filesystem refuses O_DIRECT; using buffered I/O")
        } catch {
            throw SystemError(call: "open(\(path))", errno: error.errno)
        }
        do {
            return (FileDescriptorBox(try FileDescriptor.open(path, flags: flags, mode: 0o600)), false)
        } catch {
            throw SystemError(call: "open(\(path))", errno: error.errno)
        }
    }

    /// Whether the fd bypasses the page cache.
    public var isDirect: Bool {
        switch kind {
        case .file(let d), .device(let d): return d
        case .memory, .rbd: return false
        }
    }

    /// Pins an RBD image to worker `worker` the first time (its completions are announced on
    /// that worker's `eventFD` and taken by it alone) and returns the worker it is pinned to:
    /// every connection of the export is served there. Nil for other stores.
    package func pin(worker: Int, eventFD: Int32) throws(SystemError) -> Int? {
        guard let image else { return nil }
        return try home.withLock { h throws(SystemError) -> Int in
            if let h { return h }
            try image.notify(eventFD: eventFD)
            h = worker
            return worker
        }
    }

    /// The worker an RBD image is pinned to (nil: none yet, or not RBD).
    package var pinnedWorker: Int? { home.withLock { $0 } }
}

/// A class owner for a `FileDescriptor` (closed when the store goes).
final class FileDescriptorBox: @unchecked Sendable {
    // SAFETY: immutable.
    let fd: FileDescriptor
    init(_ fd: consuming FileDescriptor) { self.fd = fd }
}

/// A class owner for a memory export's mapping.
final class MappingOwner: @unchecked Sendable {
    // SAFETY: immutable; the bytes are accessed through `baseAddress` by workers.
    let mapping: MemoryMapping
    init(count: Int) throws(SystemError) { mapping = try MemoryMapping(anonymous: count) }
}
