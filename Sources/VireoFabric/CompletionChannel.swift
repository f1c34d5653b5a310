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
        let taken = try FabricError.wrap { () throws(SystemError) in
            try takenOrWouldBlock("ibv_get_cq_event") { ibv_get_cq_event(raw, &cq, &ctx) }
        }
        return taken ? cq.map { OpaquePointer($0) } : nil
    }
}

#if canImport(Glibc)
import Glibc
#endif
