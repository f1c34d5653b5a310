import CVireoSys
#if canImport(Glibc)
import Glibc
#endif

extension StreamSocket {
    /// A TCP socket listening on the numeric address `host` (IPv4 or IPv6) and `port` (0: any
    /// free port); `boundPort` is set to the port it is bound to.
    public static func listenTCP(host: String, port: UInt16, backlog: Int32 = 16,
                                 boundPort: inout UInt16) throws(SystemError) -> StreamSocket {
        var bound: Int32 = 0
        let raw = try syscallRetrying("bind/listen(TCP)") { vireo_tcp_listen(host, String(port), backlog, &bound) }
        boundPort = UInt16(truncatingIfNeeded: bound)
        return StreamSocket(fd: FileDescriptor(owning: raw))
    }

    /// A TCP socket connected to the numeric address `host` and `port`.
    public static func connectTCP(host: String, port: UInt16) throws(SystemError) -> StreamSocket {
        let raw = try syscallRetrying("connect(TCP)") { vireo_tcp_connect(host, String(port)) }
        return StreamSocket(fd: FileDescriptor(owning: raw))
    }
}
