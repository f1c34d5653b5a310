import CVireoSys
import Logging
import VireoFabric
import VireoSys
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// `vireo-target serve`: listens on the fabric, admits block connections to
/// the configured exports, and hands each to a worker thread.
///
/// The control plane (one thread) accepts and rejects connections, watches
/// each connection's rdma_cm events (a peer's disconnect is passed to its
/// worker, which drops the queue once its storage I/O is done), and releases
/// connections the workers retire. Data moves only on the workers.
public final class TargetDaemon: @unchecked Sendable {
    // SAFETY: after `start`, everything below is touched by the control thread
    // only, except `retired` (guarded by `lock`) and the workers' hand-off API.
    public let config: TargetConfig
    let logger: Logger
    /// Exports by name.
    public let exports: [String: Export]
    private let listener: Listener
    private var workers: [TargetWorker] = []
    private var context: VerbsContext?
    private var deviceInfo: DeviceInfo?
    private let controlWake: EventFD
    private let stopFlag: UnsafeMutablePointer<Int>
    private var thread: OSThread?
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var retired: [TargetQueue] = []
    /// Live connections by queue identity: the control plane's view.
    private var live: [ObjectIdentifier: Live] = [:]
    private var finalCounters: TargetCounters?

    private struct Live {
        let queue: TargetQueue
        let connection: Connection
        let worker: TargetWorker
        let hostID: [UInt8]
    }

    /// Device CQ entries per worker (capped by the device's maximum).
    static let workerCQCapacity = 32_767
    /// io_uring entries per worker: the sum of the queue depths it may serve.
    static let workerRingEntries = 4096
    /// RDMA READs in flight per connection, each way.
    static let readDepth = 16

    /// Opens every export and binds the listener. Fails on the first export that cannot be opened.
    public init(config: TargetConfig, logger: Logger) throws {
        try config.validate()
        self.config = config
        self.logger = logger
        var exports: [String: Export] = [:]
        for e in config.exports {
            let export = try Export(config: e, logger: logger)
            exports[e.name] = export
            logger.info("export \(e.name): \(Self.describe(export))")
        }
        self.exports = exports
        listener = try Listener(address: FabricAddress(parsing: config.listen))
        controlWake = try EventFD()
        stopFlag = .allocate(capacity: 1)
        stopFlag.initialize(to: 0)
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        stop()
        pthread_mutex_destroy(lock)
        lock.deallocate()
        stopFlag.deallocate()
    }

    /// The bound port (useful with port 0).
    public var port: UInt16 { listener.port }

    /// Starts the workers (now, when the listener is bound to a device; else at the first connection) and the control thread.
    public func start() throws {
        if let ctx = listener.context { try makeWorkers(on: ctx) }
        thread = try OSThread(name: "vireo-ctl") { [self] in controlLoop() }
        logger.info("serving \(exports.count) export(s) on \(listener.address.host):\(port) with \(config.workers) worker(s)")
    }

    /// Stops accepting, stops the workers, releases every connection. Idempotent.
    public func stop() {
        guard let t = thread else { return }
        vireo_relaxed_store(stopFlag, 1)
        controlWake.signal()
        t.join()
        thread = nil
        let total = TargetCounters()
        for w in workers {
            for q in w.stop() { q.release(disconnectTimeoutMilliseconds: 200) }
            total.add(w.counters)
        }
        for q in takeRetired() { q.release(disconnectTimeoutMilliseconds: 200) }
        live.removeAll()
        finalCounters = total
        logger.info("stopped: \(total.summary)")
    }

    /// Totals over the workers (live values are approximate while serving).
    public var counters: TargetCounters {
        if let finalCounters { return finalCounters }
        let total = TargetCounters()
        for w in workers { total.add(w.counters) }
        return total
    }

    /// Runs until SIGINT/SIGTERM (blocked by the caller with `TerminationSignal.block()`).
    public func runUntilTerminated() throws {
        try start()
        let sig = TerminationSignal.wait()
        logger.info("signal \(sig): shutting down")
        stop()
    }

    private func makeWorkers(on ctx: VerbsContext) throws {
        guard workers.isEmpty else { return }
        let info = try ctx.query()
        deviceInfo = info
        context = ctx
        let cqCap = max(1024, min(Self.workerCQCapacity, info.maxCQE))
        for i in 0..<config.workers {
            let w = try TargetWorker(
                index: i, context: ctx, cqCapacity: cqCap, ringEntries: Self.workerRingEntries,
                busyPoll: config.busyPoll, logger: logger, retire: { [weak self] q in self?.retireFromWorker(q) })
            try w.start()
            workers.append(w)
        }
    }

    static func describe(_ e: Export) -> String {
        let c = e.config
        let backing: String
        switch c.backing {
        case .file(let p): backing = "file \(p)" + (e.store.isDirect ? " (O_DIRECT)" : " (buffered)")
        case .device(let p): backing = "device \(p)" + (e.store.isDirect ? " (O_DIRECT)" : " (buffered)")
        case .memory: backing = "memory"
        }
        return "\(backing), \(e.store.capacity) bytes, block \(c.blockSize)" + (c.readOnly ? ", read-only" : "")
    }

    // MARK: retire hand-off (worker → control plane)

    private func retireFromWorker(_ q: TargetQueue) {
        pthread_mutex_lock(lock)
        retired.append(q)
        pthread_mutex_unlock(lock)
        controlWake.signal()
    }

    private func takeRetired() -> [TargetQueue] {
        pthread_mutex_lock(lock)
        let r = retired
        retired = []
        pthread_mutex_unlock(lock)
        return r
    }

    // MARK: the control loop

    private func controlLoop() {
        let poller = Poller(capacity: 2 + TargetWorker.maxQueues * 4)
        var watched: [Live] = []
        var dirty = true
        while vireo_relaxed_load(stopFlag) == 0 {
            if dirty {
                poller.removeAll()
                poller.add(listener.eventFD)
                poller.add(controlWake.rawValue)
                watched = Array(live.values)
                for w in watched where poller.count < poller.capacity { poller.add(w.connection.eventFD) }
                dirty = false
            }
            do { try poller.wait(timeoutMilliseconds: 1000) } catch {
                logger.error("control: \(error)")
                continue
            }
            if vireo_relaxed_load(stopFlag) != 0 { break }
            if poller.isReady(1) { controlWake.drain() }
            for q in takeRetired() {
                release(q)
                dirty = true
            }
            if poller.isReady(0) {
                while true {
                    do {
                        guard let req = try listener.nextRequest(timeoutMilliseconds: 0) else { break }
                        if handle(req) { dirty = true }
                    } catch {
                        logger.error("listener: \(error)")
                        break
                    }
                }
            }
            // Connection events (DISCONNECTED, DEVICE_REMOVAL).
            for (i, w) in watched.enumerated() where 2 + i < poller.count && poller.isReady(2 + i) {
                // The peer's disconnect does not move our QP to error by itself: tell the worker.
                switch try? w.connection.pollEvent(timeoutMilliseconds: 0) {
                case .disconnected?, .deviceRemoved?:
                    w.worker.requestDrop(w.queue)
                default:
                    break
                }
            }
        }
    }

    /// Releases a retired queue and its counts.
    private func release(_ q: TargetQueue) {
        if let entry = live.removeValue(forKey: ObjectIdentifier(q)) {
            entry.worker.queueCount -= 1
            entry.worker.completionBudgetLeft += q.completionBudget
            entry.worker.ringBudgetLeft += q.depth
            q.export.queues -= 1
            q.export.queuesByHost[entry.hostID, default: 1] -= 1
            if q.export.queuesByHost[entry.hostID] == 0 { q.export.queuesByHost[entry.hostID] = nil }
        }
        q.release()
    }

    /// Admits or rejects one request. Returns true when a connection was added.
    private func handle(_ req: ConnectionRequest) -> Bool {
        func reject(_ r: ConnectReject) {
            logger.notice("rejected \(req.peerAddress): \(r.message)")
            do { try req.reject(privateData: r.encoded()) } catch { logger.error("reject \(req.peerAddress): \(error)") }
        }
        let admitted: Admission.Admitted
        switch Admission.decide(privateData: req.privateData, exports: exports) {
        case .reject(let r):
            reject(r)
            return false
        case .admit(let a):
            admitted = a
        }
        guard let ctx = req.context else {
            reject(ConnectReject(.internalError, "connection request without a device"))
            return false
        }
        do { try makeWorkers(on: ctx) } catch {
            reject(ConnectReject(.internalError, "target cannot start its workers: \(error)"))
            return false
        }
        guard ctx.raw == context?.raw else {
            reject(ConnectReject(.internalError, "connection arrived on another RDMA device than the target serves"))
            return false
        }
        let g = admitted.geometry
        let depth = Int(g.queueDepth)
        let segments = Int(g.maxSegments)
        let maxWR = deviceInfo?.maxQueuePairWorkRequests ?? 1024
        let sendDepth = min(max(segments + 1, min(depth * (segments + 1), 1024)), maxWR)
        let cqNeed = depth + sendDepth
        // The least loaded worker with room for this connection's completions and storage operations.
        guard let worker = workers.filter({ $0.completionBudgetLeft >= cqNeed && $0.ringBudgetLeft >= depth
            && $0.queueCount < TargetWorker.maxQueues })
            .min(by: { $0.queueCount < $1.queueCount }) else {
            reject(ConnectReject(.queueLimit, "target is at its connection capacity"))
            return false
        }
        let resources = ConnectionResources(
            sendCQ: worker.cq, receiveCQ: worker.cq,
            queuePair: QueuePairConfig(sendDepth: sendDepth, receiveDepth: depth, maxSendSegments: 1,
                                       maxReceiveSegments: 1, maxInlineData: 64, readDepth: Self.readDepth))
        let connection: Connection
        do {
            connection = try req.accept(resources: resources, privateData: g.encoded())
        } catch {
            logger.error("accept \(req.peerAddress) for \(admitted.request.name): \(error)")
            return false
        }
        let q: TargetQueue
        do {
            q = try TargetQueue(connection: connection, export: admitted.export, geometry: g, sendQueueDepth: sendDepth)
        } catch {
            logger.error("\(req.peerAddress) for \(admitted.request.name): cannot allocate its buffers: \(error)")
            connection.disconnect()
            return false
        }
        worker.completionBudgetLeft -= cqNeed
        worker.ringBudgetLeft -= depth
        worker.queueCount += 1
        admitted.export.queues += 1
        admitted.export.queuesByHost[admitted.request.hostID, default: 0] += 1
        live[ObjectIdentifier(q)] = Live(queue: q, connection: connection, worker: worker, hostID: admitted.request.hostID)
        logger.info("\(req.peerAddress) connected to \(admitted.request.name) queue \(admitted.request.queueIndex) (depth \(depth), \(segments) segments, max I/O \(g.maxIOBytes)) on worker \(worker.index)")
        worker.adopt(q)
        return true
    }
}
