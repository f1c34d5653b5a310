import VireoSys
import VireoWire

/// Per-worker statistics, bumped on the data path without locks or
/// allocation (one writer: the worker). Read them after the worker stops, or
/// racily for a rough live view.
public final class TargetCounters: @unchecked Sendable {
    // SAFETY: one writing thread; readers accept torn/stale values.
    private let counts: FixedArray<UInt64>
    private var storage: UnsafeMutablePointer<UInt64> { counts.base }
    private static let opcodeBase = 0, statusBase = 8, bytesReadIndex = 16, bytesWrittenIndex = 17
    private static let droppedIndex = 18, acceptedIndex = 19, chunkedIndex = 20, probedIndex = 21
    private static let badCommandBase = 22, faultBase = badCommandBase + CapsuleCheck.allCases.count
    private static let authenticatedIndex = faultBase + ConnectionFault.allCases.count
    private static let refusedBase = authenticatedIndex + 1
    private static let copiedIndex = refusedBase + AuthRejectReason.allCases.count + 1
    private static let fixedIndex = copiedIndex + 1
    private static let strayIndex = fixedIndex + 1
    private static let clusterRetryIndex = strayIndex + 1, clusterErrorIndex = strayIndex + 2
    private static let count = clusterErrorIndex + 1

    public init() {
        counts = FixedArray(repeating: 0, count: Self.count)
    }

    @inline(__always) func command(_ opcode: UInt8) { storage[Self.opcodeBase + Int(opcode & 7)] &+= 1 }
    @inline(__always) func status(_ s: UInt8) { storage[Self.statusBase + Int(s & 7)] &+= 1 }
    @inline(__always) func read(_ n: Int) { storage[Self.bytesReadIndex] &+= UInt64(n) }
    @inline(__always) func written(_ n: Int) { storage[Self.bytesWrittenIndex] &+= UInt64(n) }
    @inline(__always) func accepted() { storage[Self.acceptedIndex] &+= 1 }
    @inline(__always) func chunked() { storage[Self.chunkedIndex] &+= 1 }
    @inline(__always) func probed() { storage[Self.probedIndex] &+= 1 }
    @inline(__always) func copied(_ n: Int) { storage[Self.copiedIndex] &+= UInt64(n) }
    @inline(__always) func fixedBufferOperation() { storage[Self.fixedIndex] &+= 1 }
    func strayReceive() { storage[Self.strayIndex] &+= 1 }
    func clusterRetry() { storage[Self.clusterRetryIndex] &+= 1 }
    func clusterError() { storage[Self.clusterErrorIndex] &+= 1 }
    @inline(__always) func badCommand(_ check: CapsuleCheck) { storage[Self.badCommandBase + check.rawValue] &+= 1 }
    func authenticated() { storage[Self.authenticatedIndex] &+= 1 }
    func refused(_ reason: AuthRejectReason) { storage[Self.refusedBase + Int(min(reason.rawValue, UInt16(AuthRejectReason.allCases.count)))] &+= 1 }
    @inline(__always) func dropped(_ fault: ConnectionFault) {
        storage[Self.droppedIndex] &+= 1
        storage[Self.faultBase + fault.rawValue] &+= 1
    }

    /// Commands seen with opcode `raw` (0: capsules whose opcode was unknown or unreadable).
    public func commands(opcode raw: UInt8) -> UInt64 { storage[Self.opcodeBase + Int(raw & 7)] }
    /// Commands answered with `status`.
    public func responses(status: UInt8) -> UInt64 { storage[Self.statusBase + Int(status & 7)] }
    public var bytesRead: UInt64 { storage[Self.bytesReadIndex] }
    public var bytesWritten: UInt64 { storage[Self.bytesWrittenIndex] }
    /// Connections dropped on an error (not counting orderly disconnects).
    public var droppedConnections: UInt64 { storage[Self.droppedIndex] }
    public var acceptedConnections: UInt64 { storage[Self.acceptedIndex] }
    /// Capsules refused by `check` (answered with an error status, or the connection dropped when truncated).
    public func badCommands(_ check: CapsuleCheck) -> UInt64 { storage[Self.badCommandBase + check.rawValue] }
    /// Connections dropped for `fault`.
    public func drops(_ fault: ConnectionFault) -> UInt64 { storage[Self.faultBase + fault.rawValue] }
    /// Commands deferred off the worker's critical path: memory-export ranges zeroed in bounded chunks.
    public var chunkedCommands: UInt64 { storage[Self.chunkedIndex] }
    /// Handshakes accepted (hosts authenticated and allowed).
    public var authenticatedConnections: UInt64 { storage[Self.authenticatedIndex] }
    /// Handshakes refused for `reason`.
    public func refusedHandshakes(_ reason: AuthRejectReason) -> UInt64 {
        storage[Self.refusedBase + Int(min(reason.rawValue, UInt16(AuthRejectReason.allCases.count)))]
    }
    /// READ/WRITE payload bytes the target's CPU copied through a bounce buffer (a memory
    /// export the RNIC could not register); registered memory exports, files and devices copy none.
    public var payloadBytesCopied: UInt64 { storage[Self.copiedIndex] }
    /// Storage reads and writes on io_uring fixed buffers (a connection's bounce buffers,
    /// registered with its worker's ring: their pages are not pinned again per operation).
    public var fixedBufferOperations: UInt64 { storage[Self.fixedIndex] }
    /// Shared receives no connection claimed (its queue pair was gone, or not adopted within
    /// 10 s, or more were waiting than the worker holds): given back unserved.
    public var strayReceives: UInt64 { storage[Self.strayIndex] }
    /// RBD operations the cluster failed and that were started again (within the export's io_timeout).
    public var clusterRetries: UInt64 { storage[Self.clusterRetryIndex] }
    /// RBD operations answered with an I/O error: the cluster failed them past the export's io_timeout.
    public var clusterErrors: UInt64 { storage[Self.clusterErrorIndex] }
    /// Liveness probes (zero-length RDMA WRITEs) sent to idle, silent peers.
    public var livenessProbes: UInt64 { storage[Self.probedIndex] }

    /// Adds `other` into this one (totals over workers).
    package func add(_ other: TargetCounters) {
        for i in 0..<Self.count { storage[i] &+= other.storage[i] }
    }

    /// One line for logs.
    public var summary: String {
        let names = ["?", "read", "write", "flush", "discard", "write_zeroes", "get_id", "?"]
        let cmds = (1...6).map { "\(names[$0])=\(storage[Self.opcodeBase + $0])" }.joined(separator: " ")
        let errs = (1...6).map { "\(storage[Self.statusBase + $0])" }.joined(separator: "/")
        return "commands \(cmds); bytes read \(bytesRead) written \(bytesWritten); errors by status 1-6 \(errs); "
            + "connections accepted \(acceptedConnections) authenticated \(authenticatedConnections) dropped \(droppedConnections); "
            + "chunked commands \(chunkedCommands)"
    }
}
