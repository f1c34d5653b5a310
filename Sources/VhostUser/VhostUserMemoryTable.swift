import Virtio
import VireoSys

/// One guest memory region mapped into this process from the fd the
/// front-end sent (memfd, hugetlbfs or shm), kept mapped while any table
/// references it.
public final class VhostUserMappedRegion: @unchecked Sendable {
    // SAFETY (Sendable): immutable after init.

    /// What the front-end described.
    public let descriptor: VhostUserMemoryRegionDescriptor
    /// The region as the Virtio memory table sees it.
    public let region: GuestMemory.Region
    private let mapping: MemoryMapping
    private let fd: FileDescriptor
    /// The file's `st_dev`/`st_ino` (0/0 if fstat failed): the same front-end
    /// process sends the same memfd again after a reconnect (`RestartRecord`).
    public let fileIdentity: (device: UInt64, inode: UInt64)

    /// Maps `descriptor.size` bytes at `descriptor.mmapOffset` of `fd`. The
    /// file is mapped from offset 0 (so an offset that is not page or huge-page
    /// aligned still works) and must be large enough.
    /// With `owner` (a `PeerFaultGuard` tag) the mapping is guarded.
    init(descriptor d: VhostUserMemoryRegionDescriptor, fd: consuming FileDescriptor, owner: UInt64? = nil,
         request: VhostUserRequest) throws(VhostUserProtocolError) {
        // Validated by the parser: offset + size does not overflow and fits Int.
        let end = Int(d.mmapOffset + d.size)
        do {
            // A memfd (or tmpfs/hugetlbfs file) shorter than offset + size
            // would map, and the first touch past its end would be SIGBUS
            // (an empty memfd was found by fuzzing: deploy/fuzz/README.md). It may
            // still shrink it later: the mapping is guarded (see below).
            guard try fd.backsMapping(of: end) else {
                throw VhostUserProtocolError(request: request, .invalid("region gpa 0x\(String(d.guestPhysicalAddress, radix: 16)): file is \(try fd.size()) bytes, region needs \(end)"))
            }
            // Guarded: a front-end that shrinks the file later costs only its own connection.
            mapping = try MemoryMapping(fd: fd, offset: 0, count: end, peerOwner: owner)
        } catch let e as VhostUserProtocolError {
            throw e
        } catch {
            throw VhostUserProtocolError(request: request, .failed("mmap of region gpa 0x\(String(d.guestPhysicalAddress, radix: 16)): \(error)"))
        }
        let st = try? fd.fileStatus()
        fileIdentity = (st?.device ?? 0, st?.inode ?? 0)
        self.fd = fd
        descriptor = d
        // SAFETY: mmapOffset < end = mapping.count.
        region = GuestMemory.Region(guestPhysAddr: d.guestPhysicalAddress, size: d.size,
                                    userAddr: d.frontendVirtualAddress,
                                    hostAddress: mapping.baseAddress.advanced(by: Int(d.mmapOffset)))
    }
}

/// The mapped regions of a connection and the `GuestMemory` built from them.
/// Immutable: SET_MEM_TABLE, ADD_MEM_REG and REM_MEM_REG each build a new table.
public struct VhostUserMemoryTable: Sendable {
    public let mapped: [VhostUserMappedRegion]
    public let memory: GuestMemory

    /// The empty table.
    public static let empty = VhostUserMemoryTable(validated: [], memory: .empty)

    private init(validated: [VhostUserMappedRegion], memory: GuestMemory) {
        mapped = validated
        self.memory = memory
    }

    /// A table of `regions`, checked for overlap by `GuestMemory`.
    public init(regions: [VhostUserMappedRegion], request: VhostUserRequest) throws(VhostUserProtocolError) {
        do {
            memory = try GuestMemory(regions: regions.map(\.region))
        } catch {
            throw VhostUserProtocolError(request: request, .invalid("memory table rejected: \(error)"))
        }
        mapped = regions
    }
}
