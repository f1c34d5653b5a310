import CVireoVerbs
import VireoSys

/// A completion channel: the fd a worker sleeps on when its CQs are empty.
public final class CompletionChannel: @unchecked Sendable {
    // SAFETY: used by the single worker thread that owns the CQs on it.
    package let raw: UnsafeMutablePointer<ibv_comp_channel>
    public let context: VerbsContext

    /// Creates a channel with a non-blocking fd.
    public init(context: VerbsContext) throws(FabricError) {
        self.context = context
        raw = try FabricError.wrap { () throws(SystemError) in
            try nonNull("ibv_create_comp_channel") { ibv_create_comp_channel(context.raw) }
        }
        let fd = raw.pointee.fd
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit { ibv_destroy_comp_channel(raw) }

    /// The fd to poll for readability.
    public var fd: Int32 { raw.pointee.fd }

    /// Takes one pending CQ event, if any, and returns the CQ it names (not yet acked).
    /// Returns nil when no event is pending (EAGAIN).
    func takeEvent() throws(FabricError) -> OpaquePointer? {
        var cq: UnsafeMutablePointer<ibv_cq>?
        var ctx: UnsafeMutableRawPointer?
        if ibv_get_cq_event(raw, &cq, &ctx) != 0 {
            let err = errno
            if err == EAGAIN || err == EWOULDBLOCK || err == EINTR { return nil }
            throw .call(SystemError(call: "ibv_get_cq_event", errno: err))
        }
        return cq.map { OpaquePointer($0) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
