#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error from a C call: which call failed and the `errno` it reported.
///
/// Every wrapper in this module (and in `VireoFabric`) throws this type, so a
/// log line always names the failing call, e.g.
/// `ibv_reg_mr: Cannot allocate memory (errno 12)`.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The C function that failed, e.g. `"mmap"` or `"rdma_resolve_addr"`.
    public let call: String
    /// The `errno` value reported by that call.
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// `strerror(errno)`.
    public var message: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(message) (errno \(errno))" }
}
