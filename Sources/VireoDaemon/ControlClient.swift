import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// A control API client (vireoctl, tests): one connection to a daemon's control socket,
/// one request at a time, each answered within `timeoutMilliseconds`.
public final class ControlClient {
    private let socket: UnixSocket
    private var pending: [UInt8] = []
    private var nextID: Int64 = 1
    public let timeoutMilliseconds: Int32

    /// Why a call failed: the daemon answered with an error, or the conversation broke.
    public enum Failure: Error, CustomStringConvertible {
        case error(ControlError)
        case transport(String)
        public var description: String {
            switch self {
            case .error(let e): return e.message
            case .transport(let m): return m
            }
        }
    }

    public init(path: String, timeoutMilliseconds: Int32 = 60_000) throws(Failure) {
        do { socket = try UnixSocket.connect(path: path) } catch {
            throw .transport("cannot reach the control socket \(path): \(error) (is the daemon running with control_socket set, and may you open it?)")
        }
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// Calls `method` with `params`; returns its result.
    public func call(_ method: String, _ params: JSONValue? = nil) throws(Failure) -> JSONValue {
        let id = nextID
        nextID += 1
        var request: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method), "id": .int(id)]
        if let params { request["params"] = params }
        do {
            try socket.send(JSONValue.object(request).encoded + [10])
        } catch { throw .transport("control socket: \(error)") }
        let line = try readLine()
        guard let answer = JSONValue.parse(line), answer["jsonrpc"] == "2.0" else {
            throw .transport("the daemon's answer is not JSON-RPC 2.0")
        }
        if let e = answer["error"] {
            throw .error(ControlError(code: e["code"]?.int ?? -32603, e["message"]?.string ?? "error without a message"))
        }
        guard answer["id"] == .int(id), let result = answer["result"] else {
            throw .transport("the daemon answered another request (id \(answer["id"].map { String(decoding: $0.encoded, as: UTF8.self) } ?? "none"))")
        }
        return result
    }

    private func readLine() throws(Failure) -> [UInt8] {
        let deadline = monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            if let line = ControlProtocol.takeLine(from: &pending) { return line }
            let now = monotonicNanoseconds()
            guard now < deadline else { throw .transport("no answer from the daemon within \(timeoutMilliseconds / 1000) s") }
            var p = pollfd(fd: socket.rawValue, events: Int16(POLLIN), revents: 0)
            _ = Glibc.poll(&p, 1, Int32(clamping: (deadline - now) / 1_000_000 + 1))
            let n: Int?
            do { n = try socket.receiveAvailable(into: &buffer) } catch {
                throw .transport("control socket: \(error)")
            }
            guard let n else { continue }
            if n == 0 { throw .transport("the daemon closed the control connection") }
            pending += buffer[0..<n]
        }
    }
}
