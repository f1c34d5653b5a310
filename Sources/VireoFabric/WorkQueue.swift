import VireoSys

/// The data-path face of a queue pair: the calls a request engine makes on it.
///
/// `QueuePair` is the device's. `VireoTestSupport`'s `FakeWorkQueue` records what
/// an engine posts and lets a test complete it, so the engines' state machines
/// run in unit tests with no RDMA device (SPDK's `rdma_ut.c` idea). Engines
/// hold `any WorkQueue`: one indirect call per posted batch, next to the
/// verbs provider's own indirect call.
///
/// Its receives (`ReceivePoster.post(_: RecvBatch)`) go to the queue pair's own
/// receive queue; a queue pair on a `SharedReceiveQueue` posts its receives there.
public protocol WorkQueue: ReceivePoster {
    /// Posts every work request in `batch` in one call, then empties it; a failure names the call.
    func post(_ batch: SendBatch) throws(FabricError)
    /// Moves the queue to the error state: nothing posted touches its buffers any more,
    /// and everything outstanding completes as flushed. Idempotent.
    func moveToError() throws(FabricError)
}

extension QueuePair: WorkQueue {}

extension WorkQueue {
    /// Posts `batch` (one `ibv_post_send`) and counts the call in `costs`; an empty batch posts nothing.
    @inline(__always)
    public func post(_ batch: SendBatch, costs: DataPathCosts) throws(FabricError) {
        guard !batch.isEmpty else { return }
        costs.count(.sendPosts)
        try post(batch)
    }
}

/// Registers memory for RDMA and hands out its keys: a device's protection
/// domain, or a test's fake (which resolves the keys it handed out when a fake
/// work queue moves data).
public protocol MemoryRegistrar: AnyObject, Sendable {
    /// Registers `[address, address+length)`; `iova` is the base peers use (default: `address`);
    /// `owner` is kept alive as long as the region.
    func register(address: UnsafeMutableRawPointer, length: Int, access: AccessFlags, iova: UInt64?,
                  owner: AnyObject?) throws(FabricError) -> MemoryRegion
    /// A type-2 memory window, unbound.
    func allocateWindow() throws(FabricError) -> MemoryWindow
}

extension ProtectionDomain: MemoryRegistrar {
    public func register(address: UnsafeMutableRawPointer, length: Int, access: AccessFlags, iova: UInt64?,
                         owner: AnyObject?) throws(FabricError) -> MemoryRegion {
        try MemoryRegion(pd: self, address: address, length: length, access: access, iova: iova, owner: owner)
    }

    public func allocateWindow() throws(FabricError) -> MemoryWindow { try MemoryWindow(pd: self) }
}

/// What a request engine needs of its connection besides the completion queue:
/// somewhere to post, memory registration, the peer's name, and an end.
/// `Connection` is the device's; tests pass a fake.
public protocol FabricLink: AnyObject, Sendable {
    /// Where the engine posts its work requests.
    var workQueue: any WorkQueue { get }
    /// Where the engine registers its buffers.
    var registrar: any MemoryRegistrar { get }
    /// Where its completions arrive (the receive CQ; an initiator queue's send and receive CQ are one).
    var completions: any CompletionSource { get }
    /// "host:port" of the peer, for logs.
    var peerAddress: String { get }
    /// The queue pair's number: how a completion of a shared receive names its connection.
    var queuePairNumber: UInt32 { get }
    /// Readable when a connection event (a disconnect) is pending: see `pollEvent`.
    var eventFD: Int32 { get }
    /// A pending connection event without blocking: `.disconnected` or `.deviceRemoved`
    /// when the connection is gone, nil otherwise.
    func pollEvent(timeoutMilliseconds: Int32) throws(FabricError) -> FabricError?
    /// Ends the connection (idempotent), waiting up to `timeoutMilliseconds` for the peer to see it.
    func disconnect(timeoutMilliseconds: Int32)
    /// Keeps `owner` (memory registered for the connection's own use, such as the handshake's
    /// buffers, which a retransmission may still read) alive as long as the connection.
    func holdUntilReleased(_ owner: any AnyObject & Sendable)
}

extension Connection: FabricLink {
    public var workQueue: any WorkQueue { queuePair }
    public var registrar: any MemoryRegistrar { queuePair.pd }
    public var completions: any CompletionSource { queuePair.receiveCQ }
    public var queuePairNumber: UInt32 { queuePair.number }
    public func holdUntilReleased(_ owner: any AnyObject & Sendable) { held.withLock { $0.append(owner) } }
}

/// Where an engine's completions come from, and how its thread sleeps on them:
/// a device's `CompletionQueue`, or a test's fake.
public protocol CompletionSource: AnyObject, Sendable {
    /// Drains up to `completions.capacity` completions into the buffer; returns how many (0: empty).
    func poll(into completions: CompletionBuffer) throws(FabricError) -> Int
    /// Arms the source: the next completion makes `wakeFD` readable.
    func requestNotification(solicitedOnly: Bool) throws(FabricError)
    /// After waking: takes (and acknowledges) the pending wake events without blocking;
    /// returns the reads that took (each a system call on a device).
    @discardableResult
    func takeChannelEvents() throws(FabricError) -> Int
    /// The descriptor a sleeping thread polls (nil: the source cannot wake anyone; poll it).
    var wakeFD: Int32? { get }
}

extension CompletionQueue: CompletionSource {
    public var wakeFD: Int32? { channel?.fd }
}

extension CompletionSource {
    /// Arms the source for any completion.
    public func requestNotification() throws(FabricError) { try requestNotification(solicitedOnly: false) }
}
