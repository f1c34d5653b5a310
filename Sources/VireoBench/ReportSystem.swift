/// The block-storage systems the report compares, each measured with the
/// same jobs in the same lab boot.
public enum ReportSystem: String, Sendable, CaseIterable, Hashable {
    /// Vireo: `vireo-bench blk` through the initiator and target (per-command memory windows).
    case vireo = "vireo-blk"
    /// The same with `remote_access = "whole-memory"`: what the windows cost.
    case vireoWholeMemory = "vireo-blk-whole-memory"
    /// Kernel NVMe-oF over the same rxe (`fio` on /dev/nvme0n1).
    case nvmf = "fio-nvmf"
    /// The same null_blk, locally (`fio` on /dev/nullb0): the floor.
    case local = "fio-local"
    /// Vireo in front of Ceph: the target's rbd export of an image on the lab's one-OSD cluster.
    case vireoRBD = "vireo-rbd"
    /// fio's own rbd engine on the same image (librbd in fio, no fabric): the no-fabric limit.
    case rbdFio = "fio-rbd"
    /// Kernel NVMe-oF (nvmet-rdma) over the same image mapped by the kernel (krbd /dev/rbd0).
    case rbdNvmf = "fio-krbd-nvmf"

    /// The results subdirectory (`round-N/<directory>/<job>.json`).
    public var directory: String { rawValue }

    /// How tables and plots name it.
    public var displayName: String {
        switch self {
        case .vireo: "vireo"
        case .vireoWholeMemory: "vireo, whole-memory keys"
        case .nvmf: "kernel NVMe-oF"
        case .local: "local null_blk"
        case .vireoRBD: "vireo, rbd export"
        case .rbdFio: "fio rbd engine"
        case .rbdNvmf: "kernel NVMe-oF on krbd"
        }
    }

    /// Whether it serves a Ceph RBD image (the RBD comparison) rather than memory.
    public var isRBD: Bool {
        switch self {
        case .vireoRBD, .rbdFio, .rbdNvmf: true
        default: false
        }
    }
}
