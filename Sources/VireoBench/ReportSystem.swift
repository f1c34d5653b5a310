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

    /// The results subdirectory (`round-N/<directory>/<job>.json`).
    public var directory: String { rawValue }

    /// How tables and plots name it.
    public var displayName: String {
        switch self {
        case .vireo: "vireo"
        case .vireoWholeMemory: "vireo, whole-memory keys"
        case .nvmf: "kernel NVMe-oF"
        case .local: "local null_blk"
        }
    }
}
