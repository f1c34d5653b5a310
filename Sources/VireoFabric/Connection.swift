import CVireoVerbs
import VireoSys

/// A connected reliable queue pair with its rdma_cm id and event channel.
///
/// Made by `Listener`/`ConnectionRequest.accept` (passive side) or
/// `Connection.connect` (active side). Released in order: disconnect, QP, CQs,
/// PD reference, cm id, event channel.
public final class Connection: @unchecked Sendable {
    // SAFETY: the data path (qp, CQs) belongs to one worker thread; the
    // control-plane methods (pollEvent, disconnect) to one control thread.
    public let queuePair: QueuePair
    let cmID: CMID
    /// The peer's private data from the handshake (zero padded to the transport maximum).
    public let peerPrivateData: [UInt8]
    /// "host:port" of the peer.
    public let peerAddress: String
    /// "host:port" of this end.
    public let localAddress: String
    private var connected = true
    /// What `holdUntilReleased` keeps: declared after `queuePair`, so released after it.
    let held = Locked<[any AnyObject & Sendable]>([])

    init(cmID: CMID, queuePair: QueuePair, peerPrivateData: [UInt8]) {
        self.cmID = cmID
        self.queuePair = queuePair
        self.peerPrivateData = peerPrivateData
        peerAddress = cmID.peerDescription
        localAddress = cmID.localDescription
    }

    deinit {
        if connected { rdma_disconnect(cmID.raw) }
    }

    public var pd: ProtectionDomain { queuePair.pd }
    public var isConnected: Bool { connected }

    /// The fd that becomes readable when a connection event (disconnect, device removal) is pending.
    public var eventFD: Int32 { cmID.channel.fd }

    /// Checks for a pending connection event without blocking.
    /// Returns `.disconnected` or `.deviceRemoved` when the connection is gone, nil otherwise.
    public func pollEvent(timeoutMilliseconds: Int32 = 0) throws(FabricError) -> FabricError? {
        guard let ev = try cmID.channel.next(timeoutMilliseconds: timeoutMilliseconds) else { return nil }
        switch ev.type {
        case RDMA_CM_EVENT_DISCONNECTED, RDMA_CM_EVENT_TIMEWAIT_EXIT:
            connected = false
            return .disconnected
        case RDMA_CM_EVENT_DEVICE_REMOVAL:
            connected = false
            return .deviceRemoved
        default:
            return nil
        }
    }

    /// Disconnects (idempotent) and waits up to `timeoutMilliseconds` for the DISCONNECTED event.
    public func disconnect(timeoutMilliseconds: Int32 = 1000) {
        guard connected else { return }
        connected = false
        rdma_disconnect(cmID.raw)
        let deadline = monotonicNanoseconds() &+ UInt64(max(timeoutMilliseconds, 0)) * 1_000_000
        while monotonicNanoseconds() < deadline {
            guard let ev = try? cmID.channel.next(timeoutMilliseconds: 50) else { continue }
            if ev.type == RDMA_CM_EVENT_DISCONNECTED || ev.type == RDMA_CM_EVENT_DEVICE_REMOVAL { return }
        }
    }
}

/// Transport limits on rdma_cm private data over IB/RoCE (rdma_cm header included).
public enum PrivateDataLimit {
    /// CONNECT_REQUEST private data.
    public static let connect = 56
    /// Accept (REP) private data.
    public static let accept = 196
    /// Reject (REJ) private data.
    public static let reject = 148
}

extension Connection {
    /// Connects to `address`, sending `privateData` (≤ 56 bytes).
    ///
    /// Errors: `.noListener` (nothing listens there), `.rejected` (the peer said
    /// no; its private data is the reason), `.unreachable`, `.timedOut`.
    public static func connect(
        to address: FabricAddress, resources: ConnectionResources = ConnectionResources(),
        privateData: [UInt8] = [], timeoutMilliseconds: Int32 = 5000
    ) throws(FabricError) -> Connection {
        guard privateData.count <= PrivateDataLimit.connect else {
            throw .privateDataTooLong(privateData.count, max: PrivateDataLimit.connect)
        }
        let channel = try CMEventChannel()
        let id = try CMID(channel: channel)
        try address.withSockaddr { (sa) throws(FabricError) in
            try FabricError.wrap { () throws(SystemError) in
                try zeroOrMinusOne("rdma_resolve_addr") { rdma_resolve_addr(id.raw, nil, sa, timeoutMilliseconds) }
            }
        }
        try expect(RDMA_CM_EVENT_ADDR_RESOLVED, on: channel, stage: "address resolution of \(address)",
                   timeout: timeoutMilliseconds)
        try FabricError.wrap { () throws(SystemError) in
            try zeroOrMinusOne("rdma_resolve_route") { rdma_resolve_route(id.raw, timeoutMilliseconds) }
        }
        try expect(RDMA_CM_EVENT_ROUTE_RESOLVED, on: channel, stage: "route resolution to \(address)",
                   timeout: timeoutMilliseconds)
        let qp = try resources.makeQueuePair(on: id)
        var param = rdma_conn_param()
        let depth = UInt8(clamping: resources.queuePair.readDepth)
        param.responder_resources = depth
        param.initiator_depth = depth
        param.retry_count = 7
        param.rnr_retry_count = 7  // 7 = retry forever on receiver-not-ready
        let rc = privateData.withUnsafeBytes { bytes in
            param.private_data = bytes.baseAddress
            param.private_data_len = UInt8(bytes.count)
            return rdma_connect(id.raw, &param)
        }
        try FabricError.wrap { () throws(SystemError) in try zeroOrMinusOne("rdma_connect") { rc } }
        let ev = try expect(RDMA_CM_EVENT_ESTABLISHED, on: channel, stage: "connect to \(address)",
                            timeout: timeoutMilliseconds, target: address)
        return Connection(cmID: id, queuePair: qp, peerPrivateData: ev.privateData)
    }

    /// Waits for `type` on `channel`; maps failure events to typed errors.
    @discardableResult
    static func expect(
        _ type: rdma_cm_event_type, on channel: CMEventChannel, stage: String, timeout: Int32,
        target: FabricAddress? = nil
    ) throws(FabricError) -> CMEvent {
        // The cm's own timeouts fire first; allow a margin before giving up.
        guard let ev = try channel.next(timeoutMilliseconds: timeout < 0 ? -1 : timeout &+ 2000) else {
            throw .timedOut(stage)
        }
        if ev.type == type { return ev }
        switch ev.type {
        case RDMA_CM_EVENT_REJECTED:
            // IB CM reject reason 28 = consumer defined (the peer called rdma_reject);
            // 8 = invalid service id: no listener on that port.
            if ev.status == 28 { throw .rejected(status: ev.status, privateData: ev.privateData) }
            if ev.status == 8 { throw .noListener(target?.description ?? stage) }
            throw .rejected(status: ev.status, privateData: ev.privateData)
        case RDMA_CM_EVENT_ADDR_ERROR, RDMA_CM_EVENT_ROUTE_ERROR, RDMA_CM_EVENT_UNREACHABLE,
             RDMA_CM_EVENT_CONNECT_ERROR:
            if ev.status == -ETIMEDOUT || ev.status == ETIMEDOUT { throw .timedOut(stage) }
            throw .unreachable(stage: stage, status: ev.status)
        case RDMA_CM_EVENT_DEVICE_REMOVAL:
            throw .deviceRemoved
        case RDMA_CM_EVENT_DISCONNECTED:
            throw .disconnected
        default:
            throw .unexpectedEvent(stage: stage, event: ev.name, status: ev.status)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
