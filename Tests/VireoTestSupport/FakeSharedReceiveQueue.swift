import VireoFabric
import VireoSys

/// A shared receive queue with no device: receives posted by an engine's pool wait
/// here, and a test delivers a peer's SEND into the oldest one as arriving on a
/// given connection, which the completion then names (`Completion.qpNumber`), as
/// an RNIC reports it. When none is posted, a real SRQ answers receiver-not-ready
/// and the sender retries: `deliver` returns nil.
public final class FakeSharedReceiveQueue: ReceivePoster, @unchecked Sendable {
    // SAFETY: all state is in `receives`, a FakeWorkQueue, which locks.
    /// Where the receives wait (its receive side; nothing is sent on it).
    private let receives: FakeWorkQueue

    public init(depth: Int, registrar: FakeRegistrar) {
        receives = FakeWorkQueue(sendDepth: 1, receiveDepth: depth, registrar: registrar)
    }

    public func post(_ batch: RecvBatch) throws(FabricError) { try receives.post(batch) }

    /// Receives posted and not yet taken.
    public var posted: Int { receives.receives.count }

    /// A SEND arriving on `link`'s queue pair lands in the oldest posted receive: the
    /// completion the worker polls, or nil when none is posted (receiver-not-ready).
    /// A SEND longer than the buffer fails that receive (IBV_WC_LOC_LEN_ERR); the pool stays usable.
    public func deliver(_ bytes: [UInt8], on link: any FabricLink) -> Completion? {
        guard let c = receives.deliver(bytes) else { return nil }
        if !c.isSuccess { receives.clearError() }
        return c.on(queuePair: link.queuePairNumber)
    }
}
