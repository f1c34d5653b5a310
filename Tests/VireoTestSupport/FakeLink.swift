import VireoFabric

/// A connection with no device: a `FakeWorkQueue` to post on, a `FakeRegistrar`
/// for buffers, a peer name, and a record of the disconnect.
public final class FakeLink: FabricLink, @unchecked Sendable {
    // SAFETY: used from the test's thread.
    public let queue: FakeWorkQueue
    public let peerAddress: String
    public private(set) var disconnects = 0

    public init(sendDepth: Int, receiveDepth: Int, registrar: FakeRegistrar = FakeRegistrar(),
                peerAddress: String = "fake-peer:1") {
        queue = FakeWorkQueue(sendDepth: sendDepth, receiveDepth: receiveDepth, registrar: registrar)
        self.peerAddress = peerAddress
    }

    public var workQueue: any WorkQueue { queue }
    public var registrar: any MemoryRegistrar { queue.registrar }
    public func disconnect(timeoutMilliseconds: Int32) { disconnects += 1 }
}
