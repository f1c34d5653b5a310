import CVireoVerbs
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// A passive rdma_cm endpoint: binds, listens, and hands out connection requests.
public final class Listener: @unchecked Sendable {
    // SAFETY: one control-plane thread accepts at a time.
    let channel: CMEventChannel
    let cmID: CMID
    /// The address given at creation.
    public let address: FabricAddress

    /// Binds to `address` (port 0 picks a free port) and listens.
    public init(address: FabricAddress, backlog: Int32 = 64) throws(FabricError) {
        self.address = address
        channel = try CMEventChannel()
        cmID = try CMID(channel: channel)
        try address.withSockaddr { (sa) throws(FabricError) in
            try FabricError.wrap { () throws(SystemError) in
                try zeroOrMinusOne("rdma_bind_addr") { rdma_bind_addr(cmID.raw, sa) }
            }
        }
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrMinusOne("rdma_listen") { rdma_listen(cmID.raw, backlog) }
        }
    }

    /// The bound port (useful after binding port 0).
    public var port: UInt16 { UInt16(bigEndian: rdma_get_src_port(cmID.raw)) }

    /// The fd that becomes readable when a request is pending.
    public var eventFD: Int32 { channel.fd }

    /// The device the listener is bound to (nil when bound to a wildcard address).
    public var context: VerbsContext? { cmID.context }

    /// Waits up to `timeoutMilliseconds` (-1: forever) for the next connection request.
    /// Events about other ids on this channel are ignored; device removal throws.
    public func nextRequest(timeoutMilliseconds: Int32 = -1) throws(FabricError) -> ConnectionRequest? {
        let deadline = timeoutMilliseconds < 0 ? UInt64.max
            : monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            let now = monotonicNanoseconds()
            let left: Int32 = deadline == UInt64.max ? -1
                : now >= deadline ? 0 : Int32(min((deadline - now) / 1_000_000, 3_600_000))
            guard let ev = try channel.next(timeoutMilliseconds: left) else { return nil }
            switch ev.type {
            case RDMA_CM_EVENT_CONNECT_REQUEST:
                guard let raw = ev.id else { continue }
                return ConnectionRequest(cmID: CMID(raw: raw, channel: channel), event: ev)
            case RDMA_CM_EVENT_DEVICE_REMOVAL:
                throw .deviceRemoved
            default:
                continue  // e.g. a child id's late event before it migrated away
            }
        }
    }
}

/// A pending connection request: accept it or reject it. Dropped without
/// either, it is rejected.
public final class ConnectionRequest: @unchecked Sendable {
    // SAFETY: handled by the control-plane thread that took it.
    let cmID: CMID
    private var answered = false
    /// The requester's private data (zero padded to the transport maximum).
    public let privateData: [UInt8]
    /// The requester's RDMA READ depths.
    let peerResponderResources: UInt8
    let peerInitiatorDepth: UInt8
    /// "host:port" of the requester.
    public let peerAddress: String

    init(cmID: CMID, event: CMEvent) {
        self.cmID = cmID
        privateData = event.privateData
        peerResponderResources = event.responderResources
        peerInitiatorDepth = event.initiatorDepth
        peerAddress = cmID.peerDescription
    }

    deinit {
        if !answered { rdma_reject(cmID.raw, nil, 0) }
    }

    /// The device the request arrived on.
    public var context: VerbsContext? { cmID.context }

    /// Builds a QP from `resources`, accepts with `privateData` (≤ 196 bytes) and
    /// waits for the connection to be established. `ackTimeout` (4.096 µs × 2^n
    /// per transport retry, 7 retries) bounds how long a work request waits for a
    /// peer that vanished without disconnecting; nil keeps rdma_cm's value, which
    /// on some devices (rxe) is 0: wait forever.
    public func accept(
        resources: ConnectionResources = ConnectionResources(), privateData: [UInt8] = [],
        timeoutMilliseconds: Int32 = 5000, ackTimeout: UInt8? = nil
    ) throws(FabricError) -> Connection {
        guard privateData.count <= PrivateDataLimit.accept else {
            throw .privateDataTooLong(privateData.count, max: PrivateDataLimit.accept)
        }
        answered = true
        // Give the connection its own event channel so its DISCONNECTED events
        // do not go to the listener.
        try cmID.migrate(to: CMEventChannel())
        if var t = ackTimeout {
            let rc = rdma_set_option(cmID.raw, Int32(RDMA_OPTION_ID), Int32(RDMA_OPTION_ID_ACK_TIMEOUT), &t, 1)
            try FabricError.wrap { () throws(SystemError) in try zeroOrMinusOne("rdma_set_option(ACK_TIMEOUT)") { rc } }
        }
        let qp = try resources.makeQueuePair(on: cmID)
        var param = rdma_conn_param()
        let depth = UInt8(clamping: resources.queuePair.readDepth)
        param.responder_resources = min(depth, peerInitiatorDepth == 0 ? depth : peerInitiatorDepth)
        param.initiator_depth = min(depth, peerResponderResources == 0 ? depth : peerResponderResources)
        param.retry_count = 7
        param.rnr_retry_count = 7
        let rc = privateData.withUnsafeBytes { bytes in
            param.private_data = bytes.baseAddress
            param.private_data_len = UInt8(bytes.count)
            return rdma_accept(cmID.raw, &param)
        }
        try FabricError.wrap { () throws(SystemError) in try zeroOrMinusOne("rdma_accept") { rc } }
        try Connection.expect(RDMA_CM_EVENT_ESTABLISHED, on: cmID.channel, stage: "accept from \(peerAddress)",
                              timeout: timeoutMilliseconds)
        return Connection(cmID: cmID, queuePair: qp, peerPrivateData: self.privateData)
    }

    /// Rejects with `privateData` (≤ 148 bytes): the requester sees `.rejected` with it.
    public func reject(privateData: [UInt8] = []) throws(FabricError) {
        guard privateData.count <= PrivateDataLimit.reject else {
            throw .privateDataTooLong(privateData.count, max: PrivateDataLimit.reject)
        }
        answered = true
        let rc = privateData.withUnsafeBytes { bytes in
            rdma_reject(cmID.raw, bytes.baseAddress, UInt8(bytes.count))
        }
        try FabricError.wrap { () throws(SystemError) in try zeroOrMinusOne("rdma_reject") { rc } }
    }
}
