import VireoFabric

/// The connection half of an initiator queue engine, disk or NIC: the current
/// connection, the supervisor's number for it, the epoch its work requests
/// carry, and the steps every loss and reconnect takes, in one place.
///
/// - Loss: `stopTraffic()` (the QP goes to error: from its return the RNIC
///   touches none of the memory the posted work names), then the engine deals
///   with what it had posted, then `forget()` (a new epoch: completions of the
///   old connection are recognised and ignored) and `requestReconnect()`.
/// - Reconnect: `takePending()` when the supervisor has one; `refuse(_:)` it, or
///   `beginEpoch()`, reap what the old connection left in the shared CQ, and
///   `adopt(_:)`.
///
/// Worker thread only (the engine's); the supervisor is reached through `link`.
struct QueueConnection<Grant: Sendable> {
    let link: QueueLink<Grant>
    /// The connection in use (nil: lost, a new one asked for).
    private(set) var current: (any FabricLink)?
    /// The supervisor's number for `current` (or for the one last given up).
    private(set) var generation: UInt64 = 1
    /// Carried by every work request (`WorkID`'s generation field); bumped whenever
    /// a connection is given up or adopted.
    private(set) var epoch: UInt16 = 1

    init(link: QueueLink<Grant>, first: any FabricLink) {
        self.link = link
        current = first
    }

    var isConnected: Bool { current != nil }

    /// The supervisor has a new connection waiting (one relaxed load: checked every poll).
    @inline(__always)
    var hasPending: Bool { link.pendingReady.load(ordering: .relaxed) }

    /// The supervisor saw the current connection go (one relaxed load when connected).
    @inline(__always)
    var lossSignalled: Bool { current != nil && link.lostGeneration.load(ordering: .relaxed) == generation }

    /// Whether a completion belongs to the current connection's work.
    @inline(__always)
    func isCurrent(_ wrId: UInt64) -> Bool { WorkID.generation(wrId) == epoch }

    /// A work-request id of the current epoch.
    @inline(__always)
    func workID(kind: UInt64, index: Int) -> UInt64 { WorkID.make(queue: 0, generation: epoch, kind: kind, index: index) }

    /// Moves the current connection's QP to error (idempotent; nothing if none).
    func stopTraffic() { try? current?.workQueue.moveToError() }

    /// Lets go of the current connection (already stopped): a new epoch starts. Returns it.
    @discardableResult
    mutating func forget() -> (any FabricLink)? {
        let old = current
        current = nil
        epoch &+= 1
        return old
    }

    /// Tells the supervisor the current generation is given up, and wakes it.
    func requestReconnect() {
        link.reconnectWanted.store(generation, ordering: .releasing)
        link.supervisorWake.signal()
    }

    /// The connection the supervisor made, if any (clears the ready flag).
    mutating func takePending() -> PendingConnection<Grant>? {
        link.pendingReady.store(false, ordering: .relaxed)
        return link.pending.withLock { v -> PendingConnection<Grant>? in
            defer { v = nil }
            return v
        }
    }

    /// Turns down `p` (its grant is unusable): it is disconnected and another is asked for.
    func refuse(_ p: PendingConnection<Grant>) {
        p.connection.disconnect(timeoutMilliseconds: 100)
        link.reconnectWanted.store(p.generation, ordering: .releasing)
        link.supervisorWake.signal()
    }

    /// Starts a new epoch before adopting, so what the old connection left in the shared CQ is ignored.
    mutating func beginEpoch() { epoch &+= 1 }

    /// Takes `p` as the current connection.
    mutating func adopt(_ p: PendingConnection<Grant>) {
        current = p.connection
        generation = p.generation
    }

    /// Disconnects for shutdown (after the worker stopped).
    mutating func close(timeoutMilliseconds: Int32 = 200) {
        current?.disconnect(timeoutMilliseconds: timeoutMilliseconds)
        current = nil
    }
}
