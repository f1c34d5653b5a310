/// The data-path face of a queue pair: the calls a request engine makes on it.
///
/// `QueuePair` is the device's. `VireoTestSupport`'s `FakeWorkQueue` records what
/// an engine posts and lets a test complete it, so the engines' state machines
/// run in unit tests with no RDMA device (SPDK's `rdma_ut.c` idea). Engines
/// hold `any WorkQueue`: one indirect call per posted batch, next to the
/// verbs provider's own indirect call.
public protocol WorkQueue: AnyObject, Sendable {
    /// Posts every work request in `batch` in one call, then empties it; a failure names the call.
    func post(_ batch: SendBatch) throws(FabricError)
    /// Posts every receive in `batch` in one call, then empties it.
    func post(_ batch: RecvBatch) throws(FabricError)
    /// Moves the queue to the error state: nothing posted touches its buffers any more,
    /// and everything outstanding completes as flushed. Idempotent.
    func moveToError() throws(FabricError)
}

extension QueuePair: WorkQueue {}

/// Registers memory for RDMA and hands out its keys: a device's protection
/// domain, or a test's fake (which resolves the keys it handed out when a fake
/// work queue moves data).
public protocol MemoryRegistrar: AnyObject, Sendable {
    /// Registers `[address, address+length)`; `iova` is the base peers use (default: `address`);
    /// `owner` is kept alive as long as the region.
    func register(address: UnsafeMutableRawPointer, length: Int, access: AccessFlags, iova: UInt64?,
                  owner: AnyObject?) throws(FabricError) -> MemoryRegion
}

extension ProtectionDomain: MemoryRegistrar {
    public func register(address: UnsafeMutableRawPointer, length: Int, access: AccessFlags, iova: UInt64?,
                         owner: AnyObject?) throws(FabricError) -> MemoryRegion {
        try MemoryRegion(pd: self, address: address, length: length, access: access, iova: iova, owner: owner)
    }
}

/// What a request engine needs of its connection besides the completion queue:
/// somewhere to post, memory registration, the peer's name, and an end.
/// `Connection` is the device's; tests pass a fake.
public protocol FabricLink: AnyObject, Sendable {
    /// Where the engine posts its work requests.
    var workQueue: any WorkQueue { get }
    /// Where the engine registers its buffers.
    var registrar: any MemoryRegistrar { get }
    /// "host:port" of the peer, for logs.
    var peerAddress: String { get }
    /// Ends the connection (idempotent), waiting up to `timeoutMilliseconds` for the peer to see it.
    func disconnect(timeoutMilliseconds: Int32)
}

extension Connection: FabricLink {
    public var workQueue: any WorkQueue { queuePair }
    public var registrar: any MemoryRegistrar { queuePair.pd }
}
