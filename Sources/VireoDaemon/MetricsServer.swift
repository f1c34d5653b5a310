import Logging
import Synchronization
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Prometheus `/metrics` over HTTP/1.1: the same counters as the stats file, rendered per
/// scrape by `collect` (text exposition format 0.0.4). One thread; off unless the daemon is
/// given an address (`metrics_listen`), loopback in the examples.
///
/// A deliberately small server: `GET /metrics` (or `/`) answers 200, another path 404,
/// another method 405; one request per connection (`Connection: close`). A request must
/// arrive whole (headers ≤ 8 KiB) within 5 s and its answer be taken within 5 s, else the
/// connection is closed; up to 16 connections at once. Scrapes never touch the data path:
/// `collect` reads the counters racily, as the stats file does.
public final class MetricsServer: @unchecked Sendable {
    // SAFETY: the listening socket and the clients are the server thread's after `start`.
    public let host: String
    /// The bound port (the asked one, or the one chosen for port 0).
    public private(set) var port: UInt16 = 0
    private let askedPort: UInt16
    private let collect: @Sendable () -> StatsSnapshot
    private let logger: Logger
    private var listening: OwnedSocket?
    private let wake: EventFD
    private let stopFlag = Atomic<Bool>(false)
    private var thread: OSThread?
    static let maxClients = 16
    static let maxRequestBytes = 8 << 10
    static let deadlineNanoseconds: UInt64 = 5_000_000_000

    private final class Client {
        let socket: StreamSocket
        var request: [UInt8] = []
        let since = monotonicNanoseconds()
        init(_ s: consuming StreamSocket) { socket = s }
    }

    /// `address`: "host:port" with a numeric host ("127.0.0.1:9464", "[::1]:9464").
    public init(address: String, logger: Logger, collect: @escaping @Sendable () -> StatsSnapshot) throws(ConfigError) {
        guard let (h, p) = Self.split(address) else {
            throw ConfigError("metrics_listen '\(address)' must be a numeric address and port, e.g. 127.0.0.1:9464 or [::1]:9464")
        }
        host = h
        askedPort = p
        self.collect = collect
        self.logger = logger
        do { wake = try EventFD() } catch { throw ConfigError("metrics: \(error)") }
    }

    /// Whether `address` is what `init` takes: a numeric "host:port" or "[v6]:port".
    public static func isValidAddress(_ address: String) -> Bool { split(address) != nil }

    /// "host:port" or "[v6]:port" → (host, port).
    static func split(_ address: String) -> (String, UInt16)? {
        let host: Substring, rest: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]") else { return nil }
            host = address[address.index(after: address.startIndex)..<close]
            rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
        } else {
            guard let colon = address.lastIndex(of: ":") else { return nil }
            host = address[..<colon]
            rest = address[colon...]
        }
        guard !host.isEmpty, let port = UInt16(rest.dropFirst()) else { return nil }
        return (String(host), port)
    }

    /// A server started at `address` (nil: none); any failure as the one configuration error.
    public static func started(at address: String?, logger: Logger,
                               collect: @escaping @Sendable () -> StatsSnapshot) throws(ConfigError) -> MetricsServer? {
        guard let address else { return nil }
        let m = try MetricsServer(address: address, logger: logger, collect: collect)
        do { try m.start() } catch { throw ConfigError("metrics_listen \(address): \(error)") }
        return m
    }

    public func start() throws(SystemError) {
        var bound: UInt16 = 0
        listening = OwnedSocket(try StreamSocket.listenTCP(host: host, port: askedPort, boundPort: &bound))
        port = bound
        thread = try OSThread(name: "vireo-metrics") { [self] in serve() }
        logger.info("metrics on http://\(host.contains(":") ? "[\(host)]" : host):\(port)/metrics")
    }

    public func stop() {
        guard !stopFlag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        thread?.join()
        thread = nil
        listening = nil
    }

    deinit { stop() }

    private func serve() {
        guard let listening else { return }
        let poller = Poller(capacity: 2 + Self.maxClients)
        var clients: [Client] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopFlag.load(ordering: .acquiring) {
            poller.removeAll()
            poller.add(wake.rawValue)
            poller.add(listening.socket.rawValue)
            for c in clients { poller.add(c.socket.rawValue) }
            do { try poller.wait(timeoutMilliseconds: 1000) } catch { usleep(100_000); continue }
            if poller.isReady(0) { _ = wake.drain() }
            var done: [ObjectIdentifier] = []
            let now = monotonicNanoseconds()
            for (i, c) in clients.enumerated() {
                if poller.isReady(2 + i), !read(c, buffer: &buffer) { done.append(ObjectIdentifier(c)) }
                else if now &- c.since > Self.deadlineNanoseconds { done.append(ObjectIdentifier(c)) }
            }
            clients.removeAll { done.contains(ObjectIdentifier($0)) }
            if poller.isReady(1), let s = try? listening.socket.accept() {
                if clients.count < Self.maxClients { clients.append(Client(s)) }
            }
        }
    }

    /// Reads from `c`; answers once its headers are complete. False: the connection is done.
    private func read(_ c: Client, buffer: inout [UInt8]) -> Bool {
        let got: Int?
        do { got = try c.socket.receiveAvailable(into: &buffer) } catch { return false }
        guard let n = got else { return true }
        if n == 0 { return false }
        c.request += buffer[0..<n]
        guard let end = Self.headersEnd(c.request) else {
            if c.request.count > Self.maxRequestBytes { answer(c, 431, "Request Header Fields Too Large", "request headers too large\n") ; return false }
            return true
        }
        let line = c.request[..<end].split(separator: 13, maxSplits: 1).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let parts = line.split(separator: " ")
        if parts.count < 3 || !parts[2].hasPrefix("HTTP/1.") {
            answer(c, 400, "Bad Request", "not an HTTP/1.x request\n")
        } else if parts[0] != "GET" && parts[0] != "HEAD" {
            answer(c, 405, "Method Not Allowed", "only GET\n", extra: "Allow: GET, HEAD\r\n")
        } else if parts[1] != "/metrics" && parts[1] != "/" && !parts[1].hasPrefix("/metrics?") {
            answer(c, 404, "Not Found", "the metrics are at /metrics\n")
        } else {
            answer(c, 200, "OK", collect().render(), type: "text/plain; version=0.0.4; charset=utf-8", head: parts[0] == "HEAD")
        }
        return false
    }

    /// Where the headers end ("\r\n\r\n"), if they have.
    static func headersEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    private func answer(_ c: Client, _ code: Int, _ reason: String, _ body: String,
                        type: String = "text/plain; charset=utf-8", extra: String = "", head: Bool = false) {
        let bodyBytes = Array(body.utf8)
        let header = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(bodyBytes.count)\r\n\(extra)Connection: close\r\n\r\n"
        let bytes = Array(header.utf8) + (head ? [] : bodyBytes)
        try? c.socket.send(bytes, by: monotonicNanoseconds() &+ Self.deadlineNanoseconds)
    }
}
