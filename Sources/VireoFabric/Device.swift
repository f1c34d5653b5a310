import CVireoVerbs
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// What one RDMA device looks like, from `ibv_query_device`/`ibv_query_port`.
public struct DeviceInfo: Sendable, CustomStringConvertible {
    public var name: String
    public var nodeGUID: UInt64
    public var maxQueuePairs: Int
    public var maxQueuePairWorkRequests: Int
    public var maxSGE: Int
    public var maxCQE: Int
    public var maxMemoryRegionSize: UInt64
    public var maxQueuePairReadAtomic: Int
    /// Memory windows the device can allocate (0: none).
    public var maxMemoryWindows: Int = 0
    /// Type-2 windows, bound by work requests (IBV_DEVICE_MEM_WINDOW_TYPE_2B).
    public var supportsType2Windows = false
    /// Shared receive queues the device can create (0: none).
    public var maxSharedReceiveQueues: Int = 0
    /// Receives one shared receive queue can hold.
    public var maxSharedReceiveQueueWorkRequests: Int = 0
    public var ports: [PortInfo]

    public var description: String {
        let p = ports.map { "port \($0.number) \($0.state) mtu \($0.activeMTU) \($0.linkLayer)" }
        return "\(name): max_qp \(maxQueuePairs) max_qp_wr \(maxQueuePairWorkRequests) max_sge \(maxSGE) "
            + "max_cqe \(maxCQE) max_qp_rd_atom \(maxQueuePairReadAtomic) max_mw \(maxMemoryWindows)"
            + " max_srq \(maxSharedReceiveQueues) max_srq_wr \(maxSharedReceiveQueueWorkRequests)"
            + (supportsType2Windows ? " (type 2)" : "") + "; " + p.joined(separator: ", ")
    }
}

/// One port of a device.
public struct PortInfo: Sendable {
    public var number: Int
    /// "ACTIVE", "DOWN", ...
    public var state: String
    /// Active MTU in bytes (256...4096).
    public var activeMTU: Int
    /// "Ethernet" (RoCE) or "InfiniBand".
    public var linkLayer: String
    /// The port is up (IBV_PORT_ACTIVE).
    public var isActive: Bool
}

/// An open verbs device context. Contexts opened here are closed on deinit;
/// contexts adopted from rdma_cm (`cm_id->verbs`) belong to librdmacm and are not.
public final class VerbsContext: @unchecked Sendable {
    // SAFETY: the pointer is immutable after init and ibv_context calls used
    // here (query, alloc_pd, create_cq) are thread safe per rdma-core.
    package let raw: UnsafeMutablePointer<ibv_context>
    private let owned: Bool

    init(adopting raw: UnsafeMutablePointer<ibv_context>) {
        self.raw = raw
        owned = false
    }

    /// Opens the device called `name` (e.g. "rxe0"), or the first device when nil.
    public init(deviceName name: String?) throws(FabricError) {
        var count: Int32 = 0
        guard let list = ibv_get_device_list(&count) else {
            throw .noDevice(Self.missingDeviceHint(errno: errno))
        }
        defer { ibv_free_device_list(list) }
        guard count > 0 else { throw .noDevice(Self.missingDeviceHint(errno: 0)) }
        var chosen: UnsafeMutablePointer<ibv_device>?
        for i in 0..<Int(count) {
            guard let dev = list[i] else { continue }
            let devName = String(cString: ibv_get_device_name(dev))
            if name == nil || devName == name { chosen = dev; break }
        }
        guard let dev = chosen else { throw .deviceNotFound(name ?? "?") }
        raw = try FabricError.wrap { () throws(SystemError) in try nonNull("ibv_open_device") { ibv_open_device(dev) } }
        owned = true
    }

    deinit {
        if owned { ibv_close_device(raw) }
    }

    /// The device name, e.g. "rxe0".
    public var name: String { String(cString: ibv_get_device_name(raw.pointee.device)) }

    /// Queries device and port attributes.
    public func query() throws(FabricError) -> DeviceInfo {
        var attr = ibv_device_attr()
        try FabricError.wrap { () throws(SystemError) in try zeroOrErrno("ibv_query_device") { ibv_query_device(raw, &attr) } }
        var ports: [PortInfo] = []
        for p in 1...max(1, Int(attr.phys_port_cnt)) {
            var pa = ibv_port_attr()
            try FabricError.wrap { () throws(SystemError) in
                try zeroOrErrno("ibv_query_port") { vireo_ibv_query_port(raw, UInt8(p), &pa) }
            }
            ports.append(PortInfo(
                number: p,
                state: String(cString: ibv_port_state_str(pa.state)),
                activeMTU: Self.mtuBytes(pa.active_mtu),
                linkLayer: pa.link_layer == UInt8(IBV_LINK_LAYER_ETHERNET) ? "Ethernet" : "InfiniBand",
                isActive: pa.state == IBV_PORT_ACTIVE))
        }
        var info = DeviceInfo(
            name: name, nodeGUID: UInt64(bigEndian: attr.node_guid),
            maxQueuePairs: Int(attr.max_qp), maxQueuePairWorkRequests: Int(attr.max_qp_wr),
            maxSGE: Int(attr.max_sge), maxCQE: Int(attr.max_cqe), maxMemoryRegionSize: attr.max_mr_size,
            maxQueuePairReadAtomic: Int(attr.max_qp_rd_atom), ports: ports)
        info.maxMemoryWindows = Int(attr.max_mw)
        info.maxSharedReceiveQueues = Int(attr.max_srq)
        info.maxSharedReceiveQueueWorkRequests = Int(attr.max_srq_wr)
        info.supportsType2Windows = UInt64(attr.device_cap_flags) & UInt64(IBV_DEVICE_MEM_WINDOW_TYPE_2B.rawValue) != 0
        return info
    }

    static func mtuBytes(_ mtu: ibv_mtu) -> Int {
        switch mtu {
        case IBV_MTU_256: return 256
        case IBV_MTU_512: return 512
        case IBV_MTU_1024: return 1024
        case IBV_MTU_2048: return 2048
        case IBV_MTU_4096: return 4096
        default: return 0
        }
    }

    /// Names of the RDMA devices present (empty when none).
    public static func deviceNames() -> [String] {
        var count: Int32 = 0
        guard let list = ibv_get_device_list(&count) else { return [] }
        defer { ibv_free_device_list(list) }
        return (0..<Int(count)).compactMap { i in list[i].map { String(cString: ibv_get_device_name($0)) } }
    }

    /// One line telling an operator why no device shows up and how to get one.
    /// Why no device shows up, and how to get one (for "no RDMA device" messages).
    public static var noDeviceHint: String { missingDeviceHint(errno: 0) }

    static func missingDeviceHint(errno err: Int32) -> String {
        if access("/sys/class/infiniband", F_OK) != 0 {
            return "the kernel has no RDMA support loaded (/sys/class/infiniband missing): "
                + "load rdma_rxe and run deploy/rxe/rxe-up, or use the lab: deploy/lab/lab run -- <command>"
        }
        if err == ENOSYS || access("/dev/infiniband/uverbs0", F_OK) != 0 {
            return "no /dev/infiniband/uverbs* device: load ib_uverbs (modprobe ib_uverbs) and create a link "
                + "(deploy/rxe/rxe-up)"
        }
        return "libibverbs found no provider for the devices: install ibverbs-providers (apt-get install ibverbs-providers)"
    }
}
