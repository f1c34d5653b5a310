import Synchronization

/// Counters of one remote NIC, summed over its queue pairs (relaxed atomics:
/// no locks on the data path).
public final class RemoteNetCounters: Sendable {
    /// Frames SENT to the target (each one SEND_WITH_IMM straight from guest buffers).
    public let txFrames = Atomic<UInt64>(0)
    /// Frame bytes sent (virtio-net header included).
    public let txBytes = Atomic<UInt64>(0)
    /// TX chains dropped and completed at once: more descriptors than SGEs,
    /// longer than the max frame, shorter than a header + Ethernet header,
    /// device-writable descriptors, or memory that is not registered.
    public let txDroppedInvalid = Atomic<UInt64>(0)
    /// TX chains completed without sending while the link was down.
    public let txDroppedLinkDown = Atomic<UInt64>(0)
    /// Frames in flight when a connection was lost (completed to the guest; Ethernet may lose them).
    public let txLostInFlight = Atomic<UInt64>(0)
    /// Times the TX ring was left alone because no credit was held.
    public let txCreditStalls = Atomic<UInt64>(0)
    /// Frames received into guest buffers.
    public let rxFrames = Atomic<UInt64>(0)
    /// Received frame bytes (virtio-net header included).
    public let rxBytes = Atomic<UInt64>(0)
    /// Receives that took more than one guest buffer (MRG_RXBUF).
    public let rxMerged = Atomic<UInt64>(0)
    /// Guest RX chains refused (completed empty): device-readable descriptors,
    /// too many segments, too small without MRG_RXBUF, unregistered memory.
    public let rxBuffersRejected = Atomic<UInt64>(0)
    /// Guest RX chains given back empty (quiesce, MTU change, front-end gone).
    public let rxBuffersReturned = Atomic<UInt64>(0)
    /// Frames not delivered on a multi-pair NIC whose target did not join its
    /// pairs into one port (no PORT_JOINED: an older target): the NIC's own
    /// frames coming back through the switch, and floods on pairs other than
    /// 0 (each pair is its own switch port there). 0 with a current target.
    public let rxFiltered = Atomic<UInt64>(0)
    /// Frames from the target too short to hold a header + Ethernet header (dropped; buffer re-posted).
    public let rxRunts = Atomic<UInt64>(0)
    /// Receive work requests posted (each one credit granted to the target).
    public let receivesPosted = Atomic<UInt64>(0)
    /// Credit-only messages sent to the target.
    public let creditMessagesSent = Atomic<UInt64>(0)
    /// Credit-only messages received (their guest buffer is posted again; the guest never sees them).
    public let creditMessagesReceived = Atomic<UInt64>(0)
    /// Messages from the target with a malformed immediate (peer broken: connection dropped).
    public let badMessages = Atomic<UInt64>(0)
    /// Connections lost (QP error, disconnect, broken peer, quiesce).
    public let connectionsLost = Atomic<UInt64>(0)
    /// Connections re-established.
    public let reconnects = Atomic<UInt64>(0)
    /// Control-queue commands acked OK.
    public let controlOK = Atomic<UInt64>(0)
    /// Control-queue commands refused (ERR).
    public let controlRefused = Atomic<UInt64>(0)
    /// Payload bytes the initiator's CPU copied. Every copy path would add
    /// here; there is none (the RNIC gathers TX frames from, and scatters RX
    /// frames into, guest memory; the CPU writes only the 2-byte num_buffers),
    /// so this stays 0.
    public let payloadBytesCopied = Atomic<UInt64>(0)

    init() {}

    @inline(__always) func bump(_ a: borrowing Atomic<UInt64>, _ n: UInt64 = 1) { a.add(n, ordering: .relaxed) }
}
