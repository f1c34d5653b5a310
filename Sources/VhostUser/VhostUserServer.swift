import Logging
import Synchronization
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Serves one device on a UNIX socket path. The VMM is the client: it
/// connects, and reconnects after a restart or a dropped connection. One
/// front-end at a time; its control messages are handled on the server's
/// own OS thread, queues on the session's worker threads.
///
/// A connection that breaks the protocol is logged and closed; the server
/// goes back to accepting, so the front-end can reconnect, and servers of
/// other devices are unaffected.
public final class VhostUserServer: @unchecked Sendable {
    // SAFETY (Sendable): mutable state is behind `current` and `lastEndStorage`
    // (`Locked`) or atomics; `thread` is set and cleared by the owner
    // (`start`/`stop`) only.

    /// The socket path.
    public let path: String
    public let device: VhostUserDevice
    public let options: VhostUserOptions
    let logger: Logger
    private let listener: UnixSocket
    private var thread: OSThread?
    private let stopping = Atomic<Bool>(false)
    private let current = Locked<VhostUserSession?>(nil)
    /// Connections accepted so far.
    public let connectionsAccepted = Atomic<UInt64>(0)
    /// Connections closed for a protocol error.
    public let protocolErrors = Atomic<UInt64>(0)
    /// Sessions that ended with a wedged queue worker.
    public let wedgedSessions = Atomic<UInt64>(0)
    private let lastEndStorage = Locked<VhostUserSession.End?>(nil)

    /// Binds `path` (a stale socket file is removed; `options.socketMode` is applied).
    public init(path: String, device: VhostUserDevice, options: VhostUserOptions = .init(),
                logger: Logger = Logger(label: "vireo.vhost-user")) throws(SystemError) {
        self.path = path
        self.device = device
        self.options = options
        self.logger = logger
        listener = try UnixSocket.listen(path: path, mode: options.socketMode)
    }

    /// How the most recent connection ended.
    public var lastEnd: VhostUserSession.End? { lastEndStorage.withLock { $0 } }

    /// The connected session, if any.
    public var session: VhostUserSession? { current.withLock { $0 } }

    /// Starts the accept loop on its own thread.
    public func start() throws(SystemError) {
        let name = "vhost-" + (path.split(separator: "/").last.map(String.init) ?? "srv")
        thread = try OSThread(name: name) { [self] in acceptLoop() }
    }

    private func acceptLoop() {
        while !stopping.load(ordering: .acquiring) {
            let sock: UnixSocket?
            do {
                sock = try listener.accept()
            } catch {
                if stopping.load(ordering: .acquiring) { return }
                logger.error("vhost-user \(path): accept: \(error)")
                continue
            }
            guard let sock else { continue }
            if stopping.load(ordering: .acquiring) { return }
            connectionsAccepted.add(1, ordering: .relaxed)
            logger.info("vhost-user \(path): front-end connected")
            // Every line the session logs names the socket (which VM's device).
            var sessionLogger = logger
            sessionLogger[metadataKey: "socket"] = "\(path)"
            let session = VhostUserSession(socket: sock, device: device, options: options, logger: sessionLogger)
            current.withLock { $0 = session }
            if stopping.load(ordering: .acquiring) { session.close() }
            let end = session.run()
            if case .protocolError = end { protocolErrors.add(1, ordering: .relaxed) }
            lastEndStorage.withLock { $0 = end }
            if session.isWedged { awaitWedgedWorkers(session) }
            current.withLock { $0 = nil }
        }
    }

    /// A wedged session's worker may still run device code once its write
    /// unblocks: no new front-end is served on this device until it returned
    /// (others devices are unaffected; `stop` does not wait for it).
    private func awaitWedgedWorkers(_ session: VhostUserSession) {
        wedgedSessions.add(1, ordering: .relaxed)
        var waited = 0
        while !session.workersExited {
            if stopping.load(ordering: .acquiring) { return }
            if waited % 100 == 0 {
                logger.error("vhost-user \(path): device wedged: waiting for its queue worker to unblock (the front-end holds its call eventfd full); new connections wait")
            }
            waited += 1
            usleep(100_000)
        }
        session.finishTeardown()
        logger.notice("vhost-user \(path): wedged queue worker returned; accepting front-ends again")
    }

    /// Sends CONFIG_CHANGE_MSG to the connected front-end (after a resize).
    @discardableResult
    public func notifyConfigChange() throws(SystemError) -> Bool {
        guard let s = session else { return false }
        return try s.notifyConfigChange()
    }

    /// Drops the current connection (the front-end may reconnect).
    public func disconnect() { session?.close() }

    /// Stops accepting, closes the connection, joins the thread, removes the socket file.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        listener.shutdown()
        session?.close()
        thread?.join()
        thread = nil
        UnixSocket.removeSocketFile(path: path)
    }
}
