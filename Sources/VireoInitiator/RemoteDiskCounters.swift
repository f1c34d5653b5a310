import VireoSys
import Synchronization

/// Counters of one remote disk (relaxed atomics: no locks on the data path).
public final class RemoteDiskCounters: Sendable {
    /// Requests taken from the virtqueues.
    public let requests = Atomic<UInt64>(0)
    /// Requests completed to the guest (any status).
    public let completed = Atomic<UInt64>(0)
    /// Requests completed with IOERR (local or from the target).
    public let ioErrors = Atomic<UInt64>(0)
    /// Requests completed with UNSUPP.
    public let unsupported = Atomic<UInt64>(0)
    /// Commands SENT to the target (resubmissions included).
    public let commandsSent = Atomic<UInt64>(0)
    /// Inline WRITE commands (guest data gathered straight into the SEND).
    public let inlineWrites = Atomic<UInt64>(0)
    /// Commands sent again after a reconnect.
    public let resubmitted = Atomic<UInt64>(0)
    /// Connections lost (QP error, disconnect, broken peer).
    public let connectionsLost = Atomic<UInt64>(0)
    /// Connections re-established.
    public let reconnects = Atomic<UInt64>(0)
    /// Requests failed because the target stayed away past the loss timeout.
    public let failedAfterLossTimeout = Atomic<UInt64>(0)
    /// Time from a request's pop off the virtqueue to the target's answer (requests the
    /// target answered; resubmitted ones from their first pop).
    public let latency = LatencyHistogram()
    /// Requests failed because the disk was deleted with force while its VMM was attached.
    public let failedDetached = Atomic<UInt64>(0)
    /// Payload bytes the initiator's CPU copied. Every copy path would add
    /// here; there is none (data moves by RDMA between guest memory and the
    /// target), so this stays 0.
    public let payloadBytesCopied = Atomic<UInt64>(0)
    /// Responses that were malformed or named a tag not in flight (peer broken).
    public let badResponses = Atomic<UInt64>(0)
    /// Requests failed because a stop, reset or memory change could not wait
    /// for them any longer (the target was stalled or away): their connection
    /// was cut first, and they are never replayed.
    public let abortedByQuiesce = Atomic<UInt64>(0)
    /// Memory windows bound over a command's guest buffers (one per segment).
    public let windowsBound = Atomic<UInt64>(0)
    /// Windows the initiator invalidated itself (those after a command's first, or all
    /// when the response did not invalidate).
    public let windowsInvalidatedLocally = Atomic<UInt64>(0)
    /// Responses to commands on windows that invalidated none of them.
    public let responsesWithoutInvalidation = Atomic<UInt64>(0)
    /// Windows allocated (a system call: per slot and segment the first time, and again after a reconnect).
    public let windowsAllocated = Atomic<UInt64>(0)

    init() {}

    @inline(__always) func bump(_ a: borrowing Atomic<UInt64>, _ n: UInt64 = 1) { a.add(n, ordering: .relaxed) }
}
