import VireoFabric
import VireoSys

/// A completion queue with no device: whoever plays the peer pushes the
/// completions an engine would poll (from any thread), and an eventfd wakes the
/// engine's sleeping worker as a completion channel would.
public final class FakeCompletionQueue: CompletionSource, @unchecked Sendable {
    // SAFETY: the queue is behind its lock; the eventfd is thread safe.
    private let pending = Locked<[Completion]>([])
    private let event: EventFD

    public init() throws(SystemError) { event = try EventFD() }

    /// Queues `c` for the engine's next poll and wakes its worker.
    public func push(_ c: Completion) {
        pending.withLock { $0.append(c) }
        event.signal()
    }

    /// Completions queued and not yet polled.
    public var count: Int { pending.withLock { $0.count } }

    public func poll(into completions: CompletionBuffer) throws(FabricError) -> Int {
        pending.withLock { p in
            let n = completions.load(p[...])
            p.removeFirst(n)
            return n
        }
    }

    public func requestNotification(solicitedOnly: Bool) throws(FabricError) {}

    public func takeChannelEvents() throws(FabricError) -> Int {
        _ = event.drain()
        return 1
    }

    public var wakeFD: Int32? { event.rawValue }
}
