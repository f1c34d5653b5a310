import Logging
import Synchronization
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// A daemon's control socket: JSON-RPC 2.0 (`ControlProtocol`) on a UNIX stream socket,
/// one thread. The socket file is created with `mode` (0600 by default: the daemon's user
/// only; a stale socket file is replaced, any other file refused) and removed at stop.
///
/// Up to `maxClients` connections at once; each request line is answered before the next
/// is read, so one client's requests run in order. A client that sends a line longer than
/// `ControlProtocol.maxRequestBytes`, does not take an answer within 5 s, or sends nothing
/// for 5 minutes is disconnected; the others are not disturbed. Methods run on this thread:
/// a slow one delays the others' answers, never the data path.
public final class ControlServer: @unchecked Sendable {
    // SAFETY: `clients` and the socket are touched only by the server thread after `start`;
    // `stopFlag` is atomic; `wake` is an eventfd.
    public let path: String
    private let mode: mode_t
    private let logger: Logger
    private let protocolEngine: ControlProtocol
    private var listening: OwnedSocket?
    private let wake: EventFD
    private let stopFlag = Atomic<Bool>(false)
    private var thread: OSThread?
    private var clients: [Client] = []
    /// The socket file this server made (device and inode): only it is removed at stop.
    private var madeFile: (dev: UInt64, ino: UInt64)?
    public static let maxClients = 16
    /// Most time one answer may take to be taken by its client.
    static let answerNanoseconds: UInt64 = 5_000_000_000
    /// A client silent this long is disconnected (its slot freed).
    static let idleNanoseconds: UInt64 = 300_000_000_000

    /// A connected client and the bytes of its unfinished line.
    private final class Client {
        let socket: UnixSocket
        var pending: [UInt8] = []
        var lastHeard = monotonicNanoseconds()
        init(_ s: consuming UnixSocket) { socket = s }
    }

    public init(path: String, mode: mode_t = 0o600, methods: [ControlMethod], logger: Logger) throws(SystemError) {
        self.path = path
        self.mode = mode
        self.logger = logger
        protocolEngine = ControlProtocol(methods: methods)
        wake = try EventFD()
    }

    deinit { stop() }

    /// Creates the socket file and starts serving.
    public func start() throws(SystemError) {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw SystemError(call: "control socket \(path): a file that is not a socket is in the way", errno: EEXIST)
            }
            // A socket someone still answers on is another daemon's, not a stale one.
            if (try? UnixSocket.connect(path: path)) != nil {
                throw SystemError(call: "control socket \(path): another daemon is serving on it", errno: EADDRINUSE)
            }
        }
        // The socket is created under a umask that leaves the owner only, then set to `mode`:
        // no moment where others could connect.
        let old = umask(0o177)
        defer { umask(old) }
        listening = OwnedSocket(try UnixSocket.listen(path: path, backlog: 16, mode: mode))
        if lstat(path, &st) == 0 { madeFile = (UInt64(st.st_dev), UInt64(st.st_ino)) }
        thread = try OSThread(name: "vireo-rpc") { [self] in serve() }
        logger.info("control socket \(path) (mode \(String(mode, radix: 8)))")
    }

    /// Stops serving, closes every client and removes the socket file. Idempotent.
    public func stop() {
        guard !stopFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        thread?.join()
        thread = nil
        clients.removeAll()
        // Only the file this server made: a later daemon's socket at the same path stays.
        var st = stat()
        if let made = madeFile, lstat(path, &st) == 0, UInt64(st.st_dev) == made.dev, UInt64(st.st_ino) == made.ino {
            UnixSocket.removeSocketFile(path: path)
        }
        madeFile = nil
        listening = nil
    }

    private func serve() {
        guard let listening else { return }
        let poller = Poller(capacity: 2 + Self.maxClients)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while !stopFlag.load(ordering: .acquiring) {
            poller.removeAll()
            poller.add(wake.rawValue)
            poller.add(listening.socket.rawValue)
            for c in clients { poller.add(c.socket.rawValue) }
            do { try poller.wait(timeoutMilliseconds: 10_000) } catch {
                logger.error("control socket: \(error)")
                usleep(100_000)
                continue
            }
            if poller.isReady(0) { _ = wake.drain() }
            var gone: [ObjectIdentifier] = []
            for (i, c) in clients.enumerated() where poller.isReady(2 + i) {
                if !read(c, buffer: &buffer) { gone.append(ObjectIdentifier(c)) }
            }
            let now = monotonicNanoseconds()
            for c in clients where now &- c.lastHeard > Self.idleNanoseconds { gone.append(ObjectIdentifier(c)) }
            clients.removeAll { gone.contains(ObjectIdentifier($0)) }
            if poller.isReady(1) { accept(listening) }
        }
    }

    private func accept(_ listening: OwnedSocket) {
        let s: UnixSocket?
        do { s = try listening.socket.accept() } catch {
            logger.warning("control socket: \(error)")
            return
        }
        guard let s else { return }
        guard clients.count < Self.maxClients else {
            let refusal = ControlProtocol.error(.unavailable("more than \(Self.maxClients) control clients at once"), id: .null).encoded + [10]
            try? s.send(refusal)
            return
        }
        clients.append(Client(s))
    }

    /// Reads what `c` sent and answers every complete line; false when it must go.
    private func read(_ c: Client, buffer: inout [UInt8]) -> Bool {
        let n: Int?
        do { n = try c.socket.receiveAvailable(into: &buffer) } catch {
            return false
        }
        guard let n else { return true }
        if n == 0 { return false }
        c.lastHeard = monotonicNanoseconds()
        c.pending += buffer[0..<n]
        while let line = ControlProtocol.takeLine(from: &c.pending) {
            if let answer = protocolEngine.respond(to: line), !send(answer, to: c) { return false }
        }
        if c.pending.count > ControlProtocol.maxRequestBytes {
            let e = ControlError.invalidRequest("a request line longer than \(ControlProtocol.maxRequestBytes) bytes")
            _ = send(ControlProtocol.error(e, id: .null).encoded, to: c)
            return false
        }
        return true
    }

    /// Sends one answer line; false (drop the client) when it is not all taken within
    /// `answerNanoseconds`, however the client paces its reads.
    private func send(_ answer: [UInt8], to c: Client) -> Bool {
        do {
            try c.socket.send(answer + [10], by: monotonicNanoseconds() &+ Self.answerNanoseconds)
            return true
        } catch {
            logger.notice("control client dropped: \(error)")
            return false
        }
    }
}
