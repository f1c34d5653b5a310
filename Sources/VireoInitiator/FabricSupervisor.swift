import Logging
import VireoFabric
import VireoSys
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// The control-plane thread of one remote device (disk or NIC): watches every queue's
/// rdma_cm events (a DISCONNECTED tells the queue's worker), and remakes a
/// connection when a worker gives one up, with exponential backoff
/// (100 ms doubling to 5 s) for as long as it takes. Workers decide when
/// held requests fail (the loss timeout); the supervisor never gives up.
final class FabricSupervisor<Connector: EndpointConnector>: @unchecked Sendable {
    // SAFETY (Sendable): the mutable arrays are set up in init and then used
    // only by the supervisor thread; workers talk to it through `QueueLink`.

    static var initialBackoffNanoseconds: UInt64 { 100_000_000 }
    static var maxBackoffNanoseconds: UInt64 { 5_000_000_000 }
    /// One connect attempt's budget (rdma_cm steps).
    static var attemptTimeoutMilliseconds: Int32 { 2000 }

    /// The device's PD: every reconnect is built in it.
    private let pd: any MemoryRegistrar
    private let connector: Connector
    private let links: [QueueLink<Connector.Grant>]
    private let cqs: [any CompletionSource]
    private let onGeometry: @Sendable (Connector.Grant, Int) -> Void
    let wake: EventBox
    private let logger: Logger
    private var watched: [(any FabricLink)?]
    private var generations: [UInt64]
    private var needsConnect: [Bool]
    private var backoff: [UInt64]
    private var nextAttempt: [UInt64]
    private var lastFailure: [String]
    /// The path each watched connection was made over (`EndpointConnector.activePath` then).
    private var connectedPath: [Int]
    /// Paths tried in a row without backoff since the queue's last connection (a failover
    /// tries each path at once, then backs off like a single target).
    private var pathsTried: [Int]
    private let control: ControlThread

    init(connector: Connector, links: [QueueLink<Connector.Grant>], cqs: [any CompletionSource], pd: any MemoryRegistrar,
         initial: [any FabricLink], wake: EventBox, logger: Logger,
         onGeometry: @escaping @Sendable (Connector.Grant, Int) -> Void) {
        self.connector = connector
        self.pd = pd
        self.links = links
        self.cqs = cqs
        self.wake = wake
        control = ControlThread(wake: wake)
        self.logger = logger
        self.onGeometry = onGeometry
        watched = initial
        let n = links.count
        generations = [UInt64](repeating: 1, count: n)
        needsConnect = [Bool](repeating: false, count: n)
        backoff = [UInt64](repeating: Self.initialBackoffNanoseconds, count: n)
        nextAttempt = [UInt64](repeating: 0, count: n)
        lastFailure = [String](repeating: "", count: n)
        connectedPath = [Int](repeating: connector.activePath, count: n)
        pathsTried = [Int](repeating: 0, count: n)
    }

    func start(name: String) throws(SystemError) {
        try control.start(name: name) { [self] in run() }
    }

    /// Stops and joins the thread; drops the connections it watches.
    func stop() {
        control.stop()
        watched = watched.map { _ in nil }
    }

    private func run() {
        var fds: [pollfd] = []
        var owners: [Int] = []
        while !control.isStopping {
            fds.removeAll(keepingCapacity: true)
            owners.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0))
            owners.append(-1)
            for (q, c) in watched.enumerated() {
                if let c {
                    fds.append(pollfd(fd: c.eventFD, events: Int16(POLLIN), revents: 0))
                    owners.append(q)
                }
            }
            var timeout: Int32 = 1000
            let now = monotonicNanoseconds()
            for q in 0..<links.count where needsConnect[q] {
                let wait = nextAttempt[q] > now ? (nextAttempt[q] - now) / 1_000_000 + 1 : 0
                timeout = min(timeout, Int32(min(wait, 1000)))
            }
            _ = poll(&fds, nfds_t(fds.count), timeout)
            wake.drainIfSignalled()
            for k in 1..<fds.count where fds[k].revents != 0 {
                let q = owners[k]
                guard let c = watched[q] else { continue }
                do {
                    if let gone = try c.pollEvent(timeoutMilliseconds: 0) { connectionGone(q, "\(gone)") }
                } catch {
                    connectionGone(q, "rdma_get_cm_event: \(error)")
                }
            }
            // Every queue on the active path: one that is still connected over another (the
            // active path moved when another queue's connect failed) is moved there.
            let active = connector.activePath
            for q in 0..<links.count where watched[q] != nil && connectedPath[q] != active {
                connectionGone(q, "moving to path \(connector.pathDescription(active)), the active one now")
            }
            for q in 0..<links.count {
                let g = links[q].reconnectWanted.exchange(0, ordering: .acquiring)
                if g != 0, g == generations[q], !needsConnect[q] {
                    watched[q] = nil
                    needsConnect[q] = true
                    backoff[q] = Self.initialBackoffNanoseconds
                    nextAttempt[q] = monotonicNanoseconds() &+ Self.initialBackoffNanoseconds
                }
            }
            for q in 0..<links.count where needsConnect[q] && monotonicNanoseconds() >= nextAttempt[q] {
                if control.isStopping { return }
                attempt(q)
            }
        }
    }

    /// The cm reported the connection of queue `q` gone: tell its worker.
    private func connectionGone(_ q: Int, _ why: String) {
        watched[q] = nil
        logger.warning("queue \(q): \(connector.targetDescription): \(why)")
        links[q].lostGeneration.store(generations[q], ordering: .releasing)
        links[q].workerWake.signal()
    }

    private func attempt(_ q: Int) {
        let path = connector.activePath
        do {
            let credits = links[q].initialCredits.load(ordering: .acquiring)
            let (conn, geometry) = try connector.connect(queue: q, cq: cqs[q], pd: pd, initialCredits: credits,
                                                         timeoutMilliseconds: Self.attemptTimeoutMilliseconds)
            generations[q] &+= 1
            watched[q] = conn
            connectedPath[q] = path
            pathsTried[q] = 0
            needsConnect[q] = false
            lastFailure[q] = ""
            onGeometry(geometry, q)
            let p = PendingConnection(connection: conn, geometry: geometry, generation: generations[q],
                                      announcedCredits: credits)
            links[q].pending.withLock { $0 = p }
            links[q].pendingReady.store(true, ordering: .releasing)
            links[q].workerWake.signal()
        } catch {
            let text = "\(error)"
            let now = connector.activePath
            if now != path {
                logger.warning("queue \(q): path \(connector.pathDescription(path)) failed (\(text)); path \(connector.pathDescription(now)) is active now")
            }
            if connector.pathCount > 1, pathsTried[q] + 1 < connector.pathCount {
                // A gateway group fails over at once: each path is tried before backing off.
                pathsTried[q] += 1
                nextAttempt[q] = monotonicNanoseconds()
                return
            }
            pathsTried[q] = 0
            if text != lastFailure[q] {
                logger.warning("queue \(q): reconnect failed: \(text) (retrying, backoff up to \(Self.maxBackoffNanoseconds / 1_000_000_000) s)")
                lastFailure[q] = text
            }
            nextAttempt[q] = monotonicNanoseconds() &+ backoff[q]
            backoff[q] = min(backoff[q] &* 2, Self.maxBackoffNanoseconds)
        }
    }
}
