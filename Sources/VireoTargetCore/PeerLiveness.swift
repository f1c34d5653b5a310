/// Whether a connection's peer still answers, judged on the worker's periodic
/// tick rather than per completion.
///
/// A peer that crashed, lost power or was cut off sends no DISCONNECT (DREQ),
/// and its QP answers nothing. What the target has posted to it then never
/// completes: on soft-RoCE a retry count of 7 (what initiators ask for) means
/// "retry forever", and an idle connection has nothing posted at all. Without a
/// timer such a peer keeps its queue slot, its registered buffers and its
/// export's connection quota for ever.
///
/// The rule: every successful completion from the connection is a sign of life
/// (`activity`, one add on the data path, no clock). On each tick, a connection
/// that has been silent for `keepalive` with nothing posted gets a probe (a
/// zero-length RDMA WRITE, `SendBatch.probe`); one that has been silent for
/// `timeout` with work or a probe posted is gone. Silence with nothing posted
/// and a probe not yet possible (no send-queue room) is still silence: the
/// timeout counts from the last sign of life either way.
public struct PeerLiveness: Sendable {
    /// Silence, with nothing posted, after which the connection is probed.
    public let keepaliveNanoseconds: UInt64
    /// Silence, with work posted, after which the peer is declared gone.
    public let timeoutNanoseconds: UInt64
    /// Bumped by the data path on every successful completion of this connection.
    public var activity: UInt32 = 0
    private var seen: UInt32 = 0
    private var silentSince: UInt64
    /// A probe is posted and has not completed (at most one at a time).
    public private(set) var probing = false

    /// What the tick found.
    public enum Verdict: Equatable, Sendable {
        /// Heard from recently, or work posted but not yet overdue.
        case alive
        /// Idle and silent for `keepalive`: post a probe.
        case probe
        /// Work posted and no completion for this long: drop the connection.
        case gone(silentNanoseconds: UInt64)
    }

    /// `now`: the monotonic clock when the connection starts being watched.
    public init(keepaliveNanoseconds: UInt64, timeoutNanoseconds: UInt64, now: UInt64) {
        self.keepaliveNanoseconds = keepaliveNanoseconds
        self.timeoutNanoseconds = timeoutNanoseconds
        silentSince = now
    }

    /// Records a sign of life (a completion). Data path: one add.
    @inline(__always)
    public mutating func heard() { activity &+= 1 }

    /// The probe asked for by `.probe` is posted.
    public mutating func probePosted() { probing = true }

    /// The probe completed (a sign of life is recorded with `heard()` as for any completion).
    public mutating func probeAnswered() { probing = false }

    /// The drop reason for a `.gone` verdict: how long the peer was silent with `work`
    /// ("posted work", "posted sends") or the probe outstanding.
    public func vanishedReason(silentNanoseconds silent: UInt64, work: String) -> String {
        "no completion from the peer for \(silent / 1_000_000) ms with \(probing ? "a liveness probe" : work) outstanding "
            + "(peer timeout \(timeoutNanoseconds / 1_000_000) ms): it vanished without a DISCONNECT"
    }

    /// The tick: `waiting` is whether anything the peer must acknowledge is posted
    /// (sends, RDMA READs, a probe).
    public mutating func check(now: UInt64, waiting: Bool) -> Verdict {
        if activity != seen {
            seen = activity
            silentSince = now
            return .alive
        }
        let silent = now >= silentSince ? now - silentSince : 0
        if waiting || probing { return silent >= timeoutNanoseconds ? .gone(silentNanoseconds: silent) : .alive }
        return silent >= keepaliveNanoseconds ? .probe : .alive
    }
}
