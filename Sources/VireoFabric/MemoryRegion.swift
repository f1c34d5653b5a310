import CVireoVerbs
import VireoSys

/// Access rights of a memory region.
public struct AccessFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let localWrite = AccessFlags(rawValue: Int32(IBV_ACCESS_LOCAL_WRITE.rawValue))
    public static let remoteWrite = AccessFlags(rawValue: Int32(IBV_ACCESS_REMOTE_WRITE.rawValue))
    public static let remoteRead = AccessFlags(rawValue: Int32(IBV_ACCESS_REMOTE_READ.rawValue))
    /// Memory windows may be bound over the region (`MemoryWindow`): the region itself then
    /// needs no remote access; each window grants its own, for its own range and life.
    public static let windowBind = AccessFlags(rawValue: Int32(IBV_ACCESS_MW_BIND.rawValue))
    /// Local write plus remote read and write: what a buffer the peer moves data in and out of needs.
    public static let all: AccessFlags = [.localWrite, .remoteWrite, .remoteRead]
}

/// A registered memory region over memory this process already owns.
///
/// The region does not own the memory. Deregister it (release the region) before
/// the memory is unmapped; `owner` can hold the memory's owner alive meanwhile.
public final class MemoryRegion: @unchecked Sendable {
    // SAFETY: immutable after init; keys and addresses are plain values.
    /// The verbs registration; nil for a region a test fake made (`init(unregistered:…)`).
    package let raw: UnsafeMutablePointer<ibv_mr>?
    /// Who registered it: the PD (or the fake); kept alive as long as the region.
    public let registrar: any MemoryRegistrar
    /// Keeps the backing memory alive for as long as the registration exists.
    private let owner: AnyObject?

    /// First registered byte (local virtual address).
    public let address: UnsafeMutableRawPointer
    /// Registered length.
    public let length: Int
    /// The address remote peers use for this region: the local address, or the
    /// `iova` given at registration (e.g. a guest-physical address).
    public let remoteBase: UInt64
    /// Key for local scatter/gather entries.
    public let lkey: UInt32
    /// Key remote peers put in RDMA READ/WRITE requests.
    public let rkey: UInt32
    /// What the peer (and the local side) may do with it.
    public let access: AccessFlags
    /// What a window bind names (`ibv_mw_bind_info.mr`): the registration, or for a fake's
    /// region a stand-in carrying its keys (freed with the region).
    package let bindHandle: UnsafeMutablePointer<ibv_mr>

    /// Registers `[address, address+length)`.
    /// - Parameters:
    ///   - iova: the base address remote peers use; defaults to `address`.
    ///   - owner: an object kept alive while registered (e.g. the mapping's owner).
    public init(
        pd: ProtectionDomain, address: UnsafeMutableRawPointer, length: Int,
        access: AccessFlags, iova: UInt64? = nil, owner: AnyObject? = nil
    ) throws(FabricError) {
        guard length > 0 else { throw .invalidArgument(call: "ibv_reg_mr", "a memory region of 0 bytes") }
        registrar = pd
        self.owner = owner
        self.address = address
        self.length = length
        self.access = access
        let base = iova ?? UInt64(UInt(bitPattern: address))
        remoteBase = base
        let mr = try FabricError.wrap { () throws(SystemError) in
            if let iova {
                return try nonNull("ibv_reg_mr_iova") {
                    vireo_ibv_reg_mr_iova(pd.raw, address, length, iova, access.rawValue)
                }
            }
            return try nonNull("ibv_reg_mr") { vireo_ibv_reg_mr(pd.raw, address, length, access.rawValue) }
        }
        raw = mr
        bindHandle = mr
        lkey = mr.pointee.lkey
        rkey = mr.pointee.rkey
    }

    /// A region no device knows: the keys are whatever a fake registrar hands out, so a
    /// fake work queue can check and resolve them. For tests (`VireoTestSupport`) only.
    package init(
        unregistered registrar: any MemoryRegistrar, address: UnsafeMutableRawPointer, length: Int,
        access: AccessFlags, iova: UInt64?, owner: AnyObject?, lkey: UInt32, rkey: UInt32
    ) {
        raw = nil
        self.registrar = registrar
        self.owner = owner
        self.address = address
        self.length = length
        self.access = access
        remoteBase = iova ?? UInt64(UInt(bitPattern: address))
        self.lkey = lkey
        self.rkey = rkey
        bindHandle = .allocate(capacity: 1)
        bindHandle.initialize(to: ibv_mr())
        bindHandle.pointee.lkey = lkey
        bindHandle.pointee.rkey = rkey
    }

    deinit {
        if let raw { ibv_dereg_mr(raw) } else { bindHandle.deallocate() }
    }

    /// A scatter/gather entry for `[offset, offset+length)` of this region.
    /// Traps if the range is outside the region: callers compute it from sizes they own.
    @inline(__always)
    public func segment(offset: Int, length: Int) -> ScatterGatherElement {
        precondition(offset >= 0 && length >= 0 && offset <= self.length && length <= self.length - offset,
                     "segment outside the memory region")
        return ScatterGatherElement(
            address: UInt64(UInt(bitPattern: address)) &+ UInt64(offset), length: UInt32(length), lkey: lkey)
    }

    /// The remote address of byte `offset` of this region.
    @inline(__always)
    public func remoteAddress(offset: Int) -> UInt64 { remoteBase &+ UInt64(offset) }
}

/// One local buffer in a work request: `ibv_sge` as a Swift value.
public struct ScatterGatherElement: Sendable, Equatable {
    public var address: UInt64
    public var length: UInt32
    public var lkey: UInt32
    public init(address: UInt64, length: UInt32, lkey: UInt32) {
        self.address = address
        self.length = length
        self.lkey = lkey
    }
}

/// Page-aligned anonymous memory registered with a PD: buffers this process
/// owns (probe buffers, receive rings, bounce buffers on the target).
public final class RegisteredBuffer: @unchecked Sendable {
    // SAFETY: the mapping lives in a class box whose lifetime exceeds the MR's:
    // `region` is declared first and so released before `storage` when the
    // buffer dies; MemoryRegion also keeps `storage` alive through `owner`.
    public let region: MemoryRegion
    private let storage: MappingBox

    /// Allocates `count` bytes (rounded up to pages) and registers them with `pd`
    /// (a protection domain, or a test's fake registrar).
    public init(pd: any MemoryRegistrar, count: Int, access: AccessFlags = .all) throws(FabricError) {
        let rounded = (count + pageSize - 1) / pageSize * pageSize
        let box = try FabricError.wrap { () throws(SystemError) in try MappingBox(count: max(rounded, pageSize)) }
        storage = box
        region = try pd.register(address: box.mapping.baseAddress, length: count, access: access, iova: nil, owner: box)
    }

    /// The registered bytes.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: region.address, count: region.length)
    }
}

/// A class owner for a `MemoryMapping` so references can keep it alive.
final class MappingBox: @unchecked Sendable {
    let mapping: MemoryMapping
    init(count: Int) throws(SystemError) { mapping = try MemoryMapping(anonymous: count) }
}
