import VireoSys
/// Frame statistics of one port or of a whole network, bumped on the data
/// path without locks or allocation (one writer: the network's worker).
/// Other threads may read them racily for a rough live view.
///
/// "rx" is what the target received from the port's peer, "tx" what it sent to it.
public final class PortCounters: @unchecked Sendable {
    // SAFETY: one writing thread; readers accept torn or stale values.
    private let counts: FixedArray<UInt64>
    private var storage: UnsafeMutablePointer<UInt64> { counts.base }
    private static let rxFrames = 0, rxBytes = 1, txFrames = 2, txBytes = 3, creditMessages = 4, probes = 5
    private static let handshakesAccepted = 6, handshakesRefused = 7
    private static let dropBase = 8
    private static let unlearnedFull = dropBase + PortDrop.allCases.count, unlearnedLimit = unlearnedFull + 1
    private static let heldFrames = unlearnedLimit + 1, copiedBytes = heldFrames + 1
    private static let count = copiedBytes + 1

    public init() {
        counts = FixedArray(repeating: 0, count: Self.count)
    }

    @inline(__always) func received(bytes: Int) {
        storage[Self.rxFrames] &+= 1
        storage[Self.rxBytes] &+= UInt64(truncatingIfNeeded: bytes)
    }

    @inline(__always) func sent(bytes: Int) {
        storage[Self.txFrames] &+= 1
        storage[Self.txBytes] &+= UInt64(truncatingIfNeeded: bytes)
    }

    @inline(__always) func sentCredit() { storage[Self.creditMessages] &+= 1 }
    @inline(__always) func probed() { storage[Self.probes] &+= 1 }
    /// The switch's learning refusals so far (network totals; copied on the worker's tick).
    func setUnlearned(tableFull: UInt64, portLimit: UInt64) {
        storage[Self.unlearnedFull] = tableFull
        storage[Self.unlearnedLimit] = portLimit
    }
    func handshake(accepted: Bool) { storage[accepted ? Self.handshakesAccepted : Self.handshakesRefused] &+= 1 }
    @inline(__always) func dropped(_ reason: PortDrop) { storage[Self.dropBase + reason.rawValue] &+= 1 }
    @inline(__always) func heldFrame() { storage[Self.heldFrames] &+= 1 }
    @inline(__always) func copied(_ n: Int) { storage[Self.copiedBytes] &+= UInt64(truncatingIfNeeded: n) }

    /// Frames received from the peer (valid or not).
    public var rxFrames: UInt64 { storage[Self.rxFrames] }
    public var rxBytes: UInt64 { storage[Self.rxBytes] }
    /// Frames sent to the peer.
    public var txFrames: UInt64 { storage[Self.txFrames] }
    public var txBytes: UInt64 { storage[Self.txBytes] }
    /// Credit-only messages sent to the peer.
    public var creditMessages: UInt64 { storage[Self.creditMessages] }
    /// Liveness probes (zero-length RDMA WRITEs) sent to the peer while it was idle and silent.
    public var livenessProbes: UInt64 { storage[Self.probes] }
    /// Connections whose host authenticated and may join (network totals).
    public var acceptedHandshakes: UInt64 { storage[Self.handshakesAccepted] }
    /// Connections refused by the handshake, or with a malformed one (network totals).
    public var refusedHandshakes: UInt64 { storage[Self.handshakesRefused] }
    /// Source addresses not learned because the MAC table was full of live entries (network totals).
    public var unlearnedTableFull: UInt64 { storage[Self.unlearnedFull] }
    /// Source addresses not learned because their port had its share of the table (network totals).
    public var unlearnedPortLimit: UInt64 { storage[Self.unlearnedLimit] }
    /// Frames that found the port without credit and waited for it (sent on later, or `stalled`).
    public var framesHeld: UInt64 { storage[Self.heldFrames] }
    /// Frame bytes the target's CPU copied into a send slot (from the TAP uplink, or between
    /// ports on different RDMA devices); port-to-port frames on one device are forwarded
    /// straight from their receive buffers.
    public var payloadBytesCopied: UInt64 { storage[Self.copiedBytes] }
    /// Frames dropped for `reason`.
    public func drops(_ reason: PortDrop) -> UInt64 { storage[Self.dropBase + reason.rawValue] }

    /// Adds `other` into this one.
    public func add(_ other: PortCounters) {
        for i in 0..<Self.count { storage[i] &+= other.storage[i] }
    }

    /// One line for logs.
    public var summary: String {
        let drops = PortDrop.allCases.filter { self.drops($0) > 0 }.map { "\($0.name)=\(self.drops($0))" }
        return "rx \(rxFrames) frames/\(rxBytes) bytes, tx \(txFrames) frames/\(txBytes) bytes, credit messages \(creditMessages)"
            + (drops.isEmpty ? ", no drops" : ", drops " + drops.joined(separator: " "))
    }
}
