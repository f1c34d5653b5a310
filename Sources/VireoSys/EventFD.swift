import CVireoSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An `eventfd(2)` counter: vhost-user kicks and calls, and thread wake-ups.
public struct EventFD: ~Copyable, Sendable {
    /// The owned descriptor.
    public let fd: FileDescriptor

    /// A new non-blocking, close-on-exec eventfd.
    public init(initialValue: UInt32 = 0) throws(SystemError) {
        let raw = try syscallRetrying("eventfd") {
            vireo_eventfd(initialValue, 1)
        }
        fd = FileDescriptor(owning: raw)
    }

    /// Adopts an eventfd received from a peer (e.g. SET_VRING_KICK) and makes
    /// it non-blocking. The descriptor is the peer's input: it must be an
    /// eventfd open for reading and writing (`checkPeerEventFD`), or this
    /// throws instead of letting a later signal or drain fail (an `O_PATH`,
    /// read-only or write-only fd) or spin (`/dev/zero` is always readable).
    public init(adopting fd: consuming FileDescriptor) throws(SystemError) {
        try fd.checkPeerEventFD()
        try fd.setNonBlocking()
        self.fd = fd
    }

    public var rawValue: Int32 { fd.rawValue }

    /// Adds 1 to the counter, waking a waiter. Never blocks: a saturated counter
    /// (EAGAIN) already means "signalled".
    public func signal() {
        var one: UInt64 = 1
        // SAFETY: `one` is an 8-byte local, exactly what eventfd write takes.
        _ = withUnsafeBytes(of: &one) { buf in
            try? fd.write(buf)
        }
    }

    /// Reads and resets the counter; returns 0 when nothing was signalled.
    @discardableResult
    public func drain() -> UInt64 {
        var value: UInt64 = 0
        // SAFETY: `value` is an 8-byte local, exactly what eventfd read fills.
        let n = withUnsafeMutableBytes(of: &value) { buf in
            (try? fd.read(into: buf)) ?? nil
        }
        return n == 8 ? value : 0
    }
}
