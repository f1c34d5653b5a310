import CVireoVerbs
#if canImport(Glibc)
import Glibc
#endif

/// A host and port on the RDMA fabric ("10.99.0.1:4420", "[fe80::1]:4420", "host:4420").
public struct FabricAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses "host:port" or "[v6]:port".
    public init(parsing text: String) throws(FabricError) {
        var host = Substring(text)
        var portText: Substring
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .badAddress("missing ] in \(text)") }
            let after = host[host.index(after: close)...]
            guard after.hasPrefix(":") else { throw .badAddress("missing :port in \(text)") }
            portText = after.dropFirst()
            host = host[host.index(after: host.startIndex)..<close]
        } else {
            guard let colon = host.lastIndex(of: ":") else { throw .badAddress("missing :port in \(text)") }
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw .badAddress("missing host in \(text)") }
        guard let port = UInt16(portText) else { throw .badAddress("bad port '\(portText)' in \(text)") }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Resolves to a socket address (numeric hosts need no DNS).
    func withSockaddr<T>(_ body: (UnsafeMutablePointer<sockaddr>) throws(FabricError) -> T) throws(FabricError) -> T {
        var storage = sockaddr_storage()
        var len: socklen_t = 0
        let rc = vireo_resolve_sockaddr(host, port, &storage, &len)
        if rc != 0 { throw .badAddress("\(self): \(String(cString: gai_strerror(rc)))") }
        return try withUnsafeMutablePointer(to: &storage) { (p) throws(FabricError) -> T in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(FabricError) -> T in try body(sa) }
        }
    }
}
