import VireoWire
import VireoSys

/// One export's counters, over every connection and worker that serves it (relaxed atomic
/// adds: several workers may serve one export), for `vireo_target_export_*` metrics
/// labelled with the export's name. They live as long as the export name does: a resized
/// export keeps its predecessor's.
public final class ExportCounters: Sendable {
    /// Counter indices.
    public enum Kind: Int, CaseIterable, Sendable {
        case reads, writes, otherCommands, bytesRead, bytesWritten, errors
    }

    private let counts = AtomicCounters(count: Kind.allCases.count)
    /// Time from a command's capsule taken into a request slot to its response posted.
    public let latency = LatencyHistogram()

    public init() {}

    /// One command answered: its opcode, status, length and time in the target.
    @inline(__always) func completed(opcode: BlockOpcode?, ok: Bool, length: UInt32, nanoseconds: UInt64) {
        switch opcode {
        case .read?:
            counts.add(Kind.reads.rawValue)
            if ok { counts.add(Kind.bytesRead.rawValue, UInt64(length)) }
        case .write?:
            counts.add(Kind.writes.rawValue)
            if ok { counts.add(Kind.bytesWritten.rawValue, UInt64(length)) }
        default:
            counts.add(Kind.otherCommands.rawValue)
        }
        if !ok { counts.add(Kind.errors.rawValue) }
        latency.record(nanoseconds: nanoseconds)
    }

    public subscript(_ k: Kind) -> UInt64 { counts[k.rawValue] }
}
