import CVireoSys
#if canImport(Glibc)
import Glibc
#endif

/// A TAP interface on the target host (`/dev/net/tun`, IFF_TAP|IFF_NO_PI,
/// non-blocking), used as a network's uplink port: each read or write is one
/// Ethernet frame without any header.
public final class TapDevice: @unchecked Sendable {
    // SAFETY: the fd is immutable; reads and writes happen on the network's worker thread only.
    public let name: String
    public let fd: Int32

    /// Creates (or attaches to) interface `name`, sets its MTU and brings it up. Needs CAP_NET_ADMIN.
    public init(name: String, mtu: Int) throws(SystemError) {
        let fd = vireo_tap_open(name, Int32(clamping: mtu))
        if fd < 0 { throw SystemError(call: "open TAP \(name)", errno: errno) }
        self.name = name
        self.fd = fd
    }

    deinit { close(fd) }

    /// Reads one frame into `buffer` (up to `capacity` bytes): its length,
    /// 0 when none is waiting, -1 on an error.
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        let n = Glibc.read(fd, buffer, capacity)
        if n >= 0 { return n == 0 ? -1 : n }
        return errno == EAGAIN || errno == EINTR ? 0 : -1
    }

    /// Writes one frame; false when the interface refused it (queue full, down, error).
    @inline(__always)
    public func write(_ frame: UnsafeRawPointer, count: Int) -> Bool {
        Glibc.write(fd, frame, count) == count
    }
}
