import CVireoVerbs
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// One rdma_cm event, copied out of librdmacm's struct and already acknowledged.
public struct CMEvent: @unchecked Sendable {
    // SAFETY: `id` is a handle used only by the control-plane thread that took the event.
    package let type: rdma_cm_event_type
    public let status: Int32
    /// The id the event is about (for CONNECT_REQUEST: the new id).
    package let id: UnsafeMutablePointer<rdma_cm_id>?
    /// Private data carried by CONNECT_REQUEST, ESTABLISHED or REJECTED.
    /// Over IB/RoCE its length is the transport maximum, zero padded.
    public let privateData: [UInt8]
    /// The peer's RDMA READ depths (CONNECT_REQUEST).
    public let responderResources: UInt8
    public let initiatorDepth: UInt8

    /// rdma_event_str of the type, e.g. "RDMA_CM_EVENT_ESTABLISHED".
    public var name: String { String(cString: rdma_event_str(type)) }
}

/// An rdma_cm event channel with a non-blocking fd.
public final class CMEventChannel: @unchecked Sendable {
    // SAFETY: events are taken by one control-plane thread at a time.
    package let raw: UnsafeMutablePointer<rdma_event_channel>

    public init() throws(FabricError) {
        guard let channel = rdma_create_event_channel() else {
            let err = errno
            // librdmacm reports ENODEV when no RDMA device (or no rdma_ucm) exists.
            if err == ENODEV || err == ENOENT { throw .noDevice(VerbsContext.noDeviceHint) }
            throw .call(SystemError(call: "rdma_create_event_channel", errno: err))
        }
        raw = channel
        let flags = fcntl(raw.pointee.fd, F_GETFL)
        _ = fcntl(raw.pointee.fd, F_SETFL, flags | O_NONBLOCK)
    }

    deinit { rdma_destroy_event_channel(raw) }

    /// The fd to poll for readability.
    public var fd: Int32 { raw.pointee.fd }

    /// Takes the next event, waiting up to `timeoutMilliseconds` (-1 forever, 0 don't wait).
    /// Returns nil on timeout. The event is acked before returning.
    public func next(timeoutMilliseconds: Int32) throws(FabricError) -> CMEvent? {
        let deadline = timeoutMilliseconds < 0 ? UInt64.max
            : monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            var ev: UnsafeMutablePointer<rdma_cm_event>?
            let taken = try FabricError.wrap { () throws(SystemError) in
                try takenOrWouldBlock("rdma_get_cm_event") { rdma_get_cm_event(raw, &ev) }
            }
            if taken, let ev {
                let e = ev.pointee
                var pdata: [UInt8] = []
                var rr: UInt8 = 0, idepth: UInt8 = 0
                switch e.event {
                case RDMA_CM_EVENT_CONNECT_REQUEST, RDMA_CM_EVENT_ESTABLISHED, RDMA_CM_EVENT_REJECTED:
                    let conn = e.param.conn
                    if let p = conn.private_data, conn.private_data_len > 0 {
                        // SAFETY: librdmacm guarantees private_data_len bytes at private_data until ack.
                        pdata = Array(UnsafeRawBufferPointer(start: p, count: Int(conn.private_data_len)))
                    }
                    rr = conn.responder_resources
                    idepth = conn.initiator_depth
                default: break
                }
                let copy = CMEvent(type: e.event, status: e.status, id: e.id, privateData: pdata,
                                   responderResources: rr, initiatorDepth: idepth)
                rdma_ack_cm_event(ev)
                return copy
            }
            let now = monotonicNanoseconds()
            if now >= deadline { return nil }
            let waitMs = deadline == UInt64.max ? Int32(-1) : Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = try FabricError.wrap { () throws(SystemError) in
                try syscallRetrying("poll") { poll(&pfd, 1, waitMs) }
            }
        }
    }
}

/// An owned rdma_cm id. Destroyed after its queue pair (the QP holds the id).
final class CMID: @unchecked Sendable {
    // SAFETY: control-plane use only; the QP pointer inside is owned by QueuePair.
    let raw: UnsafeMutablePointer<rdma_cm_id>
    /// The channel its events arrive on; kept alive until the id is destroyed.
    private(set) var channel: CMEventChannel

    init(raw: UnsafeMutablePointer<rdma_cm_id>, channel: CMEventChannel) {
        self.raw = raw
        self.channel = channel
    }

    /// Creates a TCP-port-space id on `channel`.
    convenience init(channel: CMEventChannel) throws(FabricError) {
        var id: UnsafeMutablePointer<rdma_cm_id>?
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrMinusOne("rdma_create_id") { rdma_create_id(channel.raw, &id, nil, RDMA_PS_TCP) }
        }
        self.init(raw: id!, channel: channel)
    }

    /// Moves the id's events to `newChannel` (every event on it must be acked).
    func migrate(to newChannel: CMEventChannel) throws(FabricError) {
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrMinusOne("rdma_migrate_id") { rdma_migrate_id(raw, newChannel.raw) }
        }
        channel = newChannel
    }

    /// The device context the id is bound to, once address resolution or a request bound it.
    var context: VerbsContext? { raw.pointee.verbs.map { VerbsContext(adopting: $0) } }

    /// "host:port" of the peer.
    var peerDescription: String {
        var buf = [CChar](repeating: 0, count: 80)
        return String(cString: vireo_format_sockaddr(rdma_get_peer_addr(raw), &buf, buf.count))
    }

    /// "host:port" of the local end.
    var localDescription: String {
        var buf = [CChar](repeating: 0, count: 80)
        return String(cString: vireo_format_sockaddr(rdma_get_local_addr(raw), &buf, buf.count))
    }

    deinit { rdma_destroy_id(raw) }
}
