import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request to a local server, read to the end (the server closes): the status
/// code and the body. For tests of the metrics listener.
public func httpRequest(host: String = "127.0.0.1", port: UInt16, method: String = "GET", path: String) throws -> (status: Int, body: String) {
    let s = try StreamSocket.connectTCP(host: host, port: port)
    try s.send(Array("\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8),
               by: monotonicNanoseconds() + 5_000_000_000)
    var got: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    let deadline = monotonicNanoseconds() + 10_000_000_000
    while monotonicNanoseconds() < deadline {
        guard let n = try s.receiveAvailable(into: &buffer) else {
            usleep(2000)
            continue
        }
        if n == 0 { break }
        got += buffer[0..<n]
    }
    let text = String(decoding: got, as: UTF8.self)
    let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}
