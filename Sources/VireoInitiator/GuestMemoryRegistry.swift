import Logging
import Virtio
import VireoFabric

/// The guest memory a remote device registered with the RNIC: one memory
/// region per guest region, iova = guest-physical address, so a descriptor's
/// guest address is usable as is in a work request (local SGE with `lkey`,
/// or a wire segment with `rkey`). Shared by the remote disk and NIC.
///
/// Mutated by the vhost-user control thread while the device's workers are
/// parked (memory callbacks run quiesced); read by the workers otherwise.
final class GuestMemoryRegistry: @unchecked Sendable {
    // SAFETY (Sendable): see the note above (the vhost-user pause handshake
    // orders the control thread's writes before the workers' reads).

    let pd: any MemoryRegistrar
    /// Registered regions, sorted, for lookups on the request path.
    private(set) var table = GuestRegionTable()
    private var regions: [UInt64: MemoryRegion] = [:]
    private let logger: Logger
    /// Prefix for log lines ("disk /run/x.sock").
    private let what: String
    /// Access the regions are registered with.
    private let access: AccessFlags

    /// `access`: local write for RDMA receives into guest memory; add remote
    /// read/write only when the target must reach guest memory itself (block
    /// READ/WRITE). A NIC hands out no rkey and registers local access only.
    init(pd: any MemoryRegistrar, logger: Logger, what: String, access: AccessFlags) {
        self.pd = pd
        self.access = access
        self.logger = logger
        self.what = what
    }

    /// Registers `added` with the registry's access. A region that fails to
    /// register is logged; requests that use it fail.
    func add(_ added: [GuestMemory.Region]) {
        for r in added {
            do {
                let mr = try pd.register(address: r.hostAddress, length: Int(r.size), access: access,
                                         iova: r.guestPhysAddr, owner: nil)
                regions[r.guestPhysAddr] = mr
                table.insert(.init(guestPhysAddr: r.guestPhysAddr, size: r.size, rkey: mr.rkey, lkey: mr.lkey, region: mr))
            } catch {
                logger.error("\(what): registering guest region 0x\(String(r.guestPhysAddr, radix: 16)) (\(r.size) bytes): \(error); requests using it fail")
            }
        }
    }

    /// Deregisters `removed` (the device's workers are quiesced).
    func remove(_ removed: [GuestMemory.Region]) {
        for r in removed {
            table.remove(guestPhysAddr: r.guestPhysAddr)
            regions[r.guestPhysAddr] = nil
        }
    }
}
