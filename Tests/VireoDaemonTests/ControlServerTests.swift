import Logging
import Testing
import VireoDaemon
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// The control socket itself: permissions, stale files, clients, limits.
@Suite(.serialized) struct ControlServerTests {
    static func path(_ tag: String) -> String { "/tmp/vireo-ctl-test-\(getpid())-\(tag).sock" }

    static func server(_ path: String, mode: mode_t = 0o600) throws -> ControlServer {
        let s = try ControlServer(path: path, mode: mode, methods: [
            ControlMethod("echo", "Returns its params.") { p throws(ControlError) in p ?? .null },
            ControlMethod("fail", "Fails.") { _ throws(ControlError) in throw .notFound("no export named 'x'") },
        ], logger: Logger(label: "test"))
        try s.start()
        return s
    }

    @Test func aClientCallsMethodsAndGetsErrors() throws {
        let path = Self.path("calls")
        let s = try Self.server(path)
        defer { s.stop() }
        let c = try ControlClient(path: path)
        #expect(try c.call("echo", ["x": 1]) == ["x": 1])
        #expect(try c.call("echo", ["y": "two"]) == ["y": "two"])
        do {
            _ = try c.call("fail")
            Issue.record("the error was not thrown")
        } catch {
            guard case .error(let e) = error else { Issue.record("\(error)"); return }
            #expect(e.code == -32001 && e.message == "no export named 'x'")
        }
        // A second client is served beside the first.
        let d = try ControlClient(path: path)
        #expect(try d.call("echo", ["z": true]) == ["z": true])
        #expect(try c.call("rpc_get_methods").array?.count == 3)
    }

    @Test func theSocketIsTheOwnersOnlyAndGoesAtStop() throws {
        let path = Self.path("mode")
        let s = try Self.server(path)
        var st = stat()
        #expect(lstat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        s.stop()
        #expect(lstat(path, &st) != 0, "the socket file is removed at stop")
        let g = try Self.server(path, mode: 0o660)
        #expect(lstat(path, &st) == 0 && st.st_mode & 0o777 == 0o660)
        g.stop()
    }

    /// A stale socket (a daemon that crashed) is replaced; a regular file is never removed.
    @Test func aStaleSocketIsReplacedAndAnotherFileRefused() throws {
        let path = Self.path("stale")
        do { let stale = try UnixSocket.listen(path: path); _ = stale }
        let s = try Self.server(path)
        #expect(try ControlClient(path: path).call("echo", ["ok": true]) == ["ok": true])
        s.stop()
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        close(fd)
        defer { unlink(path) }
        #expect(throws: SystemError.self) { try Self.server(path) }
        var st = stat()
        #expect(lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG, "the regular file is still there")
    }

    /// A line longer than the limit is answered with an error and the client disconnected;
    /// other clients are served throughout.
    @Test func anOversizedRequestDropsOnlyItsClient() throws {
        let path = Self.path("big")
        let s = try Self.server(path)
        defer { s.stop() }
        let other = try ControlClient(path: path)
        let big = try UnixSocket.connect(path: path)
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 10)
        var answer: [UInt8] = []
        for _ in 0..<((ControlProtocol.maxRequestBytes >> 16) + 2) {
            if (try? big.send(chunk)) == nil { break }
        }
        var buf = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<100 {
            if let n = try? big.receiveAvailable(into: &buf) {
                if n == 0 { break }
                answer += buf[0..<n]
            } else { usleep(20_000) }
        }
        let line = answer.split(separator: 10).first.map(Array.init) ?? []
        #expect(JSONValue.parse(line)?["error"]?["code"] == -32600)
        #expect(try other.call("echo", ["still": true]) == ["still": true])
    }

    /// A socket a running daemon answers on is not taken over, and stays.
    @Test func aLiveSocketIsNotTakenOver() throws {
        let path = Self.path("live")
        let first = try Self.server(path)
        defer { first.stop() }
        #expect(throws: SystemError.self) { try Self.server(path) }
        #expect(try ControlClient(path: path).call("echo", ["x": 1]) == ["x": 1])
    }

    /// A client that asks and never reads is dropped once an answer waits 5 s for it; the
    /// others are answered again after that, not held for ever.
    @Test func aClientThatDoesNotReadIsDroppedNotWaitedFor() throws {
        let path = Self.path("slow")
        let s = try Self.server(path)
        defer { s.stop() }
        let slow = try UnixSocket.connect(path: path)
        let padding = String(repeating: "p", count: 4000)
        let request = Array("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"p\":\"\(padding)\"},\"id\":1}\n".utf8)
        // Far more answers than a socket buffer holds, never read.
        for _ in 0..<400 {
            let took = request.withUnsafeBytes { b -> Bool in
                do throws(SystemError) { return try slow.sendAvailable(b) != nil } catch { return false }
            }
            if !took { break }
        }
        let started = monotonicNanoseconds()
        let other = try ControlClient(path: path, timeoutMilliseconds: 30_000)
        #expect(try other.call("echo", ["ok": true]) == ["ok": true])
        #expect(monotonicNanoseconds() - started < 20_000_000_000)
    }

    @Test func aClosedMailboxFailsAtOnce() throws {
        let m = try ControlMailbox()
        let t0 = monotonicNanoseconds()
        let owner = try OSThread(name: "owner") {
            var p = pollfd(fd: m.wakeFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 5000)
            m.runPending()
        }
        #expect(try m.run { .success(7) } == 7, "run on the owner's thread")
        owner.join()
        m.close()
        #expect(throws: ControlError.self) { _ = try m.run { .success(8) } }
        #expect(monotonicNanoseconds() - t0 < 5_000_000_000, "no waiting for an owner that stopped")
    }
}
