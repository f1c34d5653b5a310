import VireoFabric
import VireoSys

/// A connection with no device: a `FakeWorkQueue` to post on, a `FakeRegistrar`
/// for buffers, a `FakeCompletionQueue` for completions, a peer name, and a
/// connection event the test raises with `cut()` (as the cm reports a DISCONNECTED).
public final class FakeLink: FabricLink, @unchecked Sendable {
    // SAFETY: the counters are atomics-free but only written under `state`'s lock.
    public let queue: FakeWorkQueue
    public let completionQueue: FakeCompletionQueue
    public let peerAddress: String
    /// A number no other fake link in this process has (a shared receive's completion names it).
    public let queuePairNumber: UInt32
    private static let numbers = Locked<UInt32>(0x100)
    private let event: EventFD
    private let state = Locked<(cut: Bool, reported: Bool, disconnects: Int)>((false, false, 0))

    /// `completions`: share one CQ across connections (an initiator queue keeps its CQ across reconnects).
    public init(sendDepth: Int, receiveDepth: Int, registrar: FakeRegistrar = FakeRegistrar(),
                completions: FakeCompletionQueue? = nil, peerAddress: String = "fake-peer:1") throws(SystemError) {
        queue = FakeWorkQueue(sendDepth: sendDepth, receiveDepth: receiveDepth, registrar: registrar)
        if let completions { completionQueue = completions } else { completionQueue = try FakeCompletionQueue() }
        self.peerAddress = peerAddress
        queuePairNumber = Self.numbers.withLock { n in
            n &+= 1
            return n
        }
        event = try EventFD()
    }

    public var workQueue: any WorkQueue { queue }
    public var registrar: any MemoryRegistrar { queue.registrar }
    public var completions: any CompletionSource { completionQueue }
    public var eventFD: Int32 { event.rawValue }
    private let held = Locked<[any AnyObject & Sendable]>([])
    public func holdUntilReleased(_ owner: any AnyObject & Sendable) { held.withLock { $0.append(owner) } }

    /// `disconnect` calls so far.
    public var disconnects: Int { state.withLock { $0.disconnects } }
    public var isCut: Bool { state.withLock { $0.cut } }

    /// The peer or the fabric ends the connection: everything posted flushes into the
    /// completion queue, and the connection event fires.
    public func cut() {
        let first = state.withLock { s -> Bool in
            defer { s.cut = true }
            return !s.cut
        }
        guard first else { return }
        for c in queue.flushAll() { completionQueue.push(c) }
        event.signal()
    }

    public func pollEvent(timeoutMilliseconds: Int32) throws(FabricError) -> FabricError? {
        _ = event.drain()
        return state.withLock { s -> FabricError? in
            guard s.cut, !s.reported else { return nil }
            s.reported = true
            return .disconnected
        }
    }

    public func disconnect(timeoutMilliseconds: Int32) {
        state.withLock { $0.disconnects += 1 }
        _ = try? queue.moveToError()
    }
}
