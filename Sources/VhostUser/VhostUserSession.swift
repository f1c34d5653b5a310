import Synchronization
import Logging
import Virtio
import VireoSys

/// One front-end connection to a device: the control plane. `run()` reads
/// and applies requests on the calling thread until the front-end hangs up
/// or breaks the protocol, then tears everything down (workers, mappings).
public final class VhostUserSession: @unchecked Sendable {
    // SAFETY (Sendable): all state is owned by the thread in `run()`, except
    // `backendChannel` (`Locked`) and `channel.shutdown()`.

    /// Why `run()` returned.
    public enum End: Sendable, Equatable {
        /// The front-end closed the connection.
        case disconnected
        /// A protocol violation (logged); the connection was closed.
        case protocolError(VhostUserProtocolError)
        /// The socket failed.
        case socketError(SystemError)
    }

    public let device: VhostUserDevice
    let channel: VhostUserChannel
    let options: VhostUserOptions
    let logger: Logger
    /// Rings the driver broke on this connection (each stop logged once, with the reason).
    let ringStops = RingStops()

    var features: UInt64 = 0
    var protocolFeatures: VhostUserProtocolFeatures = []
    /// The front-end sent SET_PROTOCOL_FEATURES.
    var protocolFeaturesSet = false

    /// VHOST_USER_F_PROTOCOL_FEATURES counts as negotiated when SET_FEATURES
    /// carried bit 30, or when the front-end went on to SET_PROTOCOL_FEATURES
    /// (which it only does after seeing bit 30 offered). QEMU 7.2's vhost-user
    /// net front-end does the latter without echoing bit 30 in SET_FEATURES,
    /// then sends SET_VRING_ENABLE; refusing that would leave the link down.
    var protocolFeaturesNegotiated: Bool {
        features & VhostFeature.protocolFeatures != 0 || protocolFeaturesSet
    }
    var table = VhostUserMemoryTable.empty
    let vrings: [VhostUserVring]
    var workers: [VhostUserWorker] = []
    var log: DirtyLog?
    var inflight: InflightRegion?
    /// The back-end's own inflight record when the front-end gave no region
    /// (`inflight` is then its queue regions).
    var restartRecord: RestartRecord?
    var logFD: FileDescriptor?
    var status: UInt64 = 0
    /// Set by `stepping(...)`: no worker threads; the caller runs the queue
    /// work with `stepQueues()`. The rings of each would-be worker, by worker id.
    var steppedGroups: [[VhostUserVring]]?
    /// A worker did not park in time; see `quiesced`.
    private(set) var isWedged = false
    let backendChannel = Locked<VhostUserChannel?>(nil)
    /// Tags this connection's mappings of front-end files (`PeerFaultGuard`):
    /// a SIGBUS contained in one of them fails this connection alone.
    let faultOwner = PeerFaultGuard.newOwner()
    /// Offered virtio features.
    public let offeredFeatures: UInt64
    /// Offered protocol features.
    public let offeredProtocolFeatures: VhostUserProtocolFeatures

    /// A session over an accepted socket.
    public init(socket: consuming UnixSocket, device: VhostUserDevice, options: VhostUserOptions = .init(),
                logger: Logger = Logger(label: "vireo.vhost-user")) {
        channel = VhostUserChannel(socket: socket, partialMessageTimeoutMilliseconds: options.partialMessageTimeoutMilliseconds)
        self.device = device
        self.options = options
        self.logger = logger
        let proto = device.protocolFeatures.intersection(.supported)
        offeredProtocolFeatures = proto
        offeredFeatures = device.features | VhostFeature.protocolFeatures
            | (proto.contains(.logSHMFD) ? VhostFeature.logAll : 0)
        let maxSize = device.maxQueueSize
        vrings = (0..<max(1, device.queueCount)).map { VhostUserVring(index: $0, maxSize: maxSize) }
        for r in vrings { r.logsDeviceWrites = options.logsDeviceWrites }
    }

    /// Wakes `run()` so it ends (as if the front-end hung up).
    public func close() { channel.shutdown() }

    /// Serves the connection until it ends; always leaves nothing running or mapped.
    @discardableResult
    public func run() -> End {
        let end: End
        do {
            try startWorkers()
            end = serve()
        } catch {
            end = .socketError(error)
        }
        teardown()
        return end
    }

    private func serve() -> End {
        while true {
            let received: VhostUserReceivedMessage?
            do {
                received = try channel.readMessage()
            } catch {
                return ended(by: error)
            }
            guard let received else {
                if let e = peerFault() { return .protocolError(e) }
                logger.info("vhost-user: front-end disconnected")
                return .disconnected
            }
            if let e = peerFault() { return .protocolError(e) }
            if let end = apply(received) { return end }
        }
    }

    /// The end of a connection whose next request could not be read.
    func ended(by error: VhostUserChannelError) -> End {
        switch error {
        case .protocolError(let e):
            logger.error("vhost-user: closing connection: \(e)")
            return .protocolError(e)
        case .system(let e):
            logger.error("vhost-user: socket error: \(e)")
            return .socketError(e)
        }
    }

    /// Handles one request and acks it (REPLY_ACK); the connection's end when
    /// it was refused or its reply failed, else nil.
    func apply(_ received: VhostUserReceivedMessage) -> End? {
        let m = received.message
        if case .setFeatures(let v) = m { adoptProtocolFeaturesIfSkipped(features: v) }
        let wantsAck = received.header.needsReply && protocolFeatures.contains(.replyAck) && !m.hasReply
        do {
            logger.trace("vhost-user: \(m.request)")
            try handle(m, fds: received.fds)
            if wantsAck { try channel.reply(to: m.request, payload: u64(0)) }
            return nil
        } catch let e as VhostUserProtocolError {
            logger.error("vhost-user: closing connection: \(e)")
            if wantsAck { try? channel.reply(to: m.request, payload: u64(1)) }
            return .protocolError(e)
        } catch let e as SystemError {
            logger.error("vhost-user: \(m.request): reply failed: \(e)")
            return .socketError(e)
        } catch {
            return .socketError(SystemError(call: "vhost-user", errno: 5))
        }
    }

    /// SET_FEATURES with VHOST_USER_F_PROTOCOL_FEATURES on a connection that
    /// never negotiated protocol features: the front-end negotiated them with
    /// an earlier connection and carries on with that set. QEMU 7.2's
    /// vhost-user-blk does this when its back-end restarts while the VM waits
    /// for an incoming migration (it loses the reconnect and skips its
    /// handshake: SET_FEATURES then GET_STATUS are the first messages).
    /// Refusing would fail the VM's disk on arrival; the back-end assumes the
    /// set it offers (the same binary offered it before, and the front-end's
    /// set is a subset of it), and says so.
    private func adoptProtocolFeaturesIfSkipped(features v: UInt64) {
        guard v & VhostFeature.protocolFeatures != 0, !protocolFeaturesSet else { return }
        protocolFeatures = offeredProtocolFeatures
        protocolFeaturesSet = true
        logger.warning("vhost-user: front-end set features with PROTOCOL_FEATURES without negotiating protocol features on this connection (a reconnect it did not handshake, e.g. QEMU 7.2 waiting for a migration); assuming the offered set \(offeredProtocolFeatures)")
    }

    /// A fault contained in one of this connection's mappings (the front-end
    /// shrank a file it sent): the connection is failed, logged once.
    func peerFault() -> VhostUserProtocolError? {
        let n = PeerFaultGuard.faults(owner: faultOwner)
        guard n > 0 else { return nil }
        let e = VhostUserProtocolError(request: nil, .invalid(
            "front-end shrank a file under a mapping (guest memory, log or inflight fd): \(n) SIGBUS contained; device failed"))
        logger.error("vhost-user: closing connection: \(e)")
        return e
    }

    // MARK: Workers and quiescing

    private func startWorkers() throws(SystemError) {
        let n = max(1, min(device.workerCount, vrings.count))
        for w in 0..<n {
            let group = vrings.filter { device.worker(forQueue: $0.index) % n == w }
            let logger = self.logger, stops = ringStops
            let worker = try VhostUserWorker(id: w, rings: group, device: device, options: options.polling,
                                             faultOwner: faultOwner, onRingStopped: { index, why in
                                                 stops.count.add(1, ordering: .relaxed)
                                                 logger.error("vhost-user: queue \(index) stopped: \(why); it serves nothing until the front-end resets the device")
                                             }) { [weak self] in self?.close() }
            for r in group { r.worker = worker }
            worker.drainTimeoutNanoseconds = options.drainTimeoutNanoseconds
            worker.parkTimeoutNanoseconds = options.parkTimeoutNanoseconds
            try worker.start(name: "vhost-q\(w)")
            worker.resume()
            workers.append(worker)
        }
    }

    /// Runs `body` with every worker parked and drained. A worker that does
    /// not park in time (wedged in a write to a blocking, saturated call fd)
    /// fails the connection: nothing is answered while it may still run.
    func quiesced<T>(_ body: () throws(VhostUserProtocolError) -> T) throws(VhostUserProtocolError) -> T {
        if let groups = steppedGroups { drainStepped(groups) }
        defer { for w in workers { w.resume() } }
        for w in workers where !w.pause() {
            isWedged = true
            throw VhostUserProtocolError(request: nil, .failed(
                "queue worker \(w.id) did not park within \(options.parkTimeoutNanoseconds / 1_000_000) ms (blocked writing the front-end's call eventfd?): device failed until it unblocks"))
        }
        return try body()
    }

    /// Whether every worker thread has returned (a wedged session's workers
    /// return once their blocking write completes).
    var workersExited: Bool { workers.allSatisfy { $0.exited.load(ordering: .acquiring) } }

    private func teardown() {
        if isWedged {
            // A worker may still be inside the device's completion path: leave
            // workers, rings, device state and mappings alone; the server calls
            // `finishTeardown` once `workersExited`.
            for w in workers { w.abandonWedged() }
            channel.shutdown()
            return
        }
        finishTeardown()
    }

    /// Releases everything the connection held (workers joined first).
    func finishTeardown() {
        for w in workers { w.pause(abandoning: true) }
        for r in vrings {
            _ = r.stop()
            r.abandonOutstanding()
            r.generation &+= 1
        }
        device.connectionClosed()
        if !table.mapped.isEmpty { device.memoryRegionsRemoved(table.mapped.map(\.region)) }
        for w in workers { w.shutdown() }
        workers = []
        table = .empty
        for r in vrings { r.memory = .empty; r.log = nil; r.inflight = nil; r.packedInflight = nil; r.inflightRegion = nil; r.call.replace(nil); r.err.replace(nil) }
        log = nil
        inflight = nil
        restartRecord = nil     // the file stays: a reconnect or a restarted back-end needs it
        backendChannel.withLock { $0 = nil }
    }

    // MARK: Back-end requests

    /// Sends CONFIG_CHANGE_MSG on the back-end request channel (e.g. after a
    /// disk resize). Returns false when the front-end gave no channel.
    @discardableResult
    public func notifyConfigChange() throws(SystemError) -> Bool {
        let ch = backendChannel.withLock { $0 }
        guard let ch else { return false }
        try ch.send(request: VhostUserBackendRequest.configChangeMsg.rawValue, flags: VhostUserHeader.version, payload: [])
        return true
    }
}

func u64(_ v: UInt64) -> [UInt8] {
    var o: [UInt8] = []
    o.appendLE(v)
    return o
}

/// A count the workers bump and tests read (the rings a driver broke on one connection).
final class RingStops: Sendable {
    let count = Atomic<Int>(0)
}
