import VhostUser
import Virtio
import VirtioDriver
import VireoSys

/// The inflight buffer a front-end keeps across back-end reconnects.
public final class InflightBuffer: Sendable {
    public let descriptor: VhostUserInflightDescriptor
    public let fd: FileDescriptor
    init(descriptor: VhostUserInflightDescriptor, fd: consuming FileDescriptor) {
        self.descriptor = descriptor
        self.fd = fd
    }
}

/// Why a front-end request failed.
public enum VhostUserFrontendError: Error, Sendable, Equatable {
    /// The back-end closed the connection.
    case disconnected
    /// The reply was not what the request expects.
    case badReply(String)
    /// REPLY_ACK reported failure.
    case nack(VhostUserRequest)
    case system(SystemError)
}

/// A front-end (VMM side) vhost-user client: what QEMU or DPDK virtio-user
/// does, for tests and load generation. Connects, negotiates, sends the
/// memory table (memfd guest memory from `DriverMemory`), sets up rings
/// driven by `SplitDriverQueue`, kicks and waits for calls.
///
/// Single-threaded; allocation is fine here.
public final class VhostUserFrontend {
    /// One ring as the front-end sees it.
    public final class Ring {
        public let index: Int
        public let driver: SplitDriverQueue
        /// The front-end's ends of the kick and call eventfds.
        public let kick: SharedEventFD
        public internal(set) var call: SharedEventFD
        init(index: Int, driver: SplitDriverQueue, kick: SharedEventFD, call: SharedEventFD) {
            self.index = index; self.driver = driver; self.kick = kick; self.call = call
        }
    }

    let channel: VhostUserChannel
    /// Negotiated virtio features.
    public private(set) var features: UInt64 = 0
    /// Negotiated protocol features.
    public private(set) var protocolFeatures: VhostUserProtocolFeatures = []
    /// Rings set up so far, by index.
    public private(set) var rings: [Int: Ring] = [:]
    /// Packed rings set up so far, by index (see `setUpPackedRing`).
    public internal(set) var packedRings: [Int: PackedRing] = [:]
    /// Ask for REPLY_ACK on requests without a reply (when negotiated).
    public var useReplyAck = true

    /// Connects to a back-end listening at `path`.
    public convenience init(path: String) throws(SystemError) {
        self.init(socket: try UnixSocket.connect(path: path))
    }

    /// Uses an already-connected socket.
    public init(socket: consuming UnixSocket) {
        channel = VhostUserChannel(socket: socket)
    }

    /// Closes the connection (as a crashing VMM would).
    public func close() { channel.shutdown() }

    // MARK: Raw messages

    /// Sends a request; with `expectReply` (or REPLY_ACK) reads the reply payload.
    @discardableResult
    public func request(_ req: VhostUserRequest, payload: [UInt8] = [], fds: [Int32] = [],
                        expectReply: Bool = false) throws(VhostUserFrontendError) -> [UInt8] {
        let ack = !expectReply && useReplyAck && protocolFeatures.contains(.replyAck)
        let flags = VhostUserHeader.version | (ack ? VhostUserHeader.needReplyFlag : 0)
        do { try channel.send(request: req.rawValue, flags: flags, payload: payload, fds: fds) } catch { throw .system(error) }
        guard expectReply || ack else { return [] }
        let (header, body, replyFDs) = try readReply()
        guard header.request == req.rawValue, header.isReply else {
            throw .badReply("\(req): reply header \(header)")
        }
        receivedFDs = replyFDs
        if ack {
            guard body.count == 8 else { throw .badReply("\(req): ack of \(body.count) bytes") }
            let v = body.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            if v != 0 { throw .nack(req) }
        }
        return body
    }

    /// Descriptors that came with the last reply (GET_INFLIGHT_FD).
    public private(set) var receivedFDs: ReceivedFileDescriptors?

    private func readReply() throws(VhostUserFrontendError) -> (VhostUserHeader, [UInt8], ReceivedFileDescriptors) {
        do {
            guard let (h, p, fds) = try channel.readFrame() else { throw VhostUserFrontendError.disconnected }
            return (h, Array(p), fds)
        } catch let e as VhostUserFrontendError {
            throw e
        } catch {
            throw .badReply("\(error)")
        }
    }

    /// Sends raw bytes (tests: malformed messages) with `fds`.
    public func sendRaw(_ bytes: [UInt8], fds: [Int32] = []) throws(SystemError) {
        let r: Result<Void, SystemError> = bytes.withUnsafeBytes { b in
            do throws(SystemError) { try channel.socket.send(b, fds: fds); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    /// Whether the back-end closed the connection (reads until EOF, up to `timeoutMilliseconds`).
    public func waitForClose(timeoutMilliseconds: Int32 = 2000) -> Bool {
        let p = Poller(capacity: 1)
        p.add(channel.socket.rawValue)
        guard (try? p.wait(timeoutMilliseconds: timeoutMilliseconds)) == 1 else { return false }
        return (try? channel.readFrame()) == nil
    }

    func u64Reply(_ req: VhostUserRequest) throws(VhostUserFrontendError) -> UInt64 {
        let body = try request(req, expectReply: true)
        guard body.count == 8 else { throw .badReply("\(req): \(body.count) bytes") }
        return body.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    func u64(_ v: UInt64) -> [UInt8] { var o: [UInt8] = []; o.appendLE(v); return o }

    // MARK: Negotiation

    /// GET_FEATURES / SET_FEATURES / GET+SET_PROTOCOL_FEATURES / SET_OWNER:
    /// accepts `wanted ∩ offered` and `wantedProtocol ∩ offered`.
    public func negotiate(wanted: UInt64, wantedProtocol: VhostUserProtocolFeatures = .supported) throws(VhostUserFrontendError) {
        try request(.setOwner)
        let offered = try u64Reply(.getFeatures)
        if offered & VhostFeature.protocolFeatures != 0 {
            let p = VhostUserProtocolFeatures(rawValue: try u64Reply(.getProtocolFeatures))
            let chosen = p.intersection(wantedProtocol)
            try request(.setProtocolFeatures, payload: u64(chosen.rawValue))
            protocolFeatures = chosen
        }
        features = offered & (wanted | VhostFeature.protocolFeatures)
        try request(.setFeatures, payload: u64(features))
    }

    /// Carries on with what an earlier connection negotiated, without the
    /// handshake (no SET_OWNER, GET_FEATURES or protocol features): only
    /// SET_FEATURES, as QEMU 7.2's vhost-user-blk does after a reconnect it
    /// lost track of.
    public func resumeWithoutHandshake(features f: UInt64, protocolFeatures p: VhostUserProtocolFeatures) throws(VhostUserFrontendError) {
        protocolFeatures = p
        try setFeatures(f)
    }

    /// SET_FEATURES again (e.g. to turn VHOST_F_LOG_ALL on).
    public func setFeatures(_ f: UInt64) throws(VhostUserFrontendError) {
        features = f
        try request(.setFeatures, payload: u64(f))
    }

    // MARK: Memory

    /// The region descriptors for `memory`'s layout (same memfd, per-region offsets).
    public static func regionDescriptors(_ memory: DriverMemory) -> [VhostUserMemoryRegionDescriptor] {
        memory.layout.map {
            VhostUserMemoryRegionDescriptor(guestPhysicalAddress: $0.guestPhysAddr, size: UInt64($0.size),
                                            frontendVirtualAddress: memory.userAddrBase + UInt64($0.mappingOffset),
                                            mmapOffset: UInt64($0.mappingOffset))
        }
    }

    /// SET_MEM_TABLE with every region of `memory`.
    public func setMemTable(_ memory: DriverMemory) throws(VhostUserFrontendError) {
        try setMemTable(Self.regionDescriptors(memory), fd: memory.fd)
    }

    /// SET_MEM_TABLE with `regions`, all backed by `fd`.
    public func setMemTable(_ regions: [VhostUserMemoryRegionDescriptor], fd: borrowing FileDescriptor) throws(VhostUserFrontendError) {
        var p: [UInt8] = []
        p.appendLE(UInt32(regions.count)); p.appendLE(UInt32(0))
        for r in regions { r.encode(into: &p) }
        try request(.setMemTable, payload: p, fds: Array(repeating: fd.rawValue, count: regions.count))
    }

    /// ADD_MEM_REG.
    public func addMemoryRegion(_ r: VhostUserMemoryRegionDescriptor, fd: borrowing FileDescriptor) throws(VhostUserFrontendError) {
        var p = u64(0)
        r.encode(into: &p)
        try request(.addMemReg, payload: p, fds: [fd.rawValue])
    }

    /// REM_MEM_REG.
    public func removeMemoryRegion(_ r: VhostUserMemoryRegionDescriptor) throws(VhostUserFrontendError) {
        var p = u64(0)
        r.encode(into: &p)
        try request(.remMemReg, payload: p)
    }

    /// GET_MAX_MEM_SLOTS.
    public func maxMemorySlots() throws(VhostUserFrontendError) -> UInt64 { try u64Reply(.getMaxMemSlots) }

    // MARK: Rings

    /// SET_VRING_NUM, BASE, ADDR, CALL, KICK (and ENABLE when protocol
    /// features were negotiated) for `driver`'s rings as queue `index`.
    @discardableResult
    public func setUpRing(_ index: Int, driver: SplitDriverQueue, base: UInt16? = nil, log: Bool = false) throws(VhostUserFrontendError) -> Ring {
        let (kick, call) = try setUpRingCommon(index, size: driver.size, base: UInt32(base ?? driver.availIdx)) {
            () throws(VhostUserFrontendError) in try setRingAddress(index, driver: driver, log: log)
        }
        let ring = Ring(index: index, driver: driver, kick: kick, call: call)
        rings[index] = ring
        return ring
    }

    /// SET_VRING_ADDR for `driver`'s rings (front-end virtual addresses), with the LOG flag if `log`.
    public func setRingAddress(_ index: Int, driver: SplitDriverQueue, log: Bool = false) throws(VhostUserFrontendError) {
        let a = driver.frontendAddresses
        var p: [UInt8] = []
        VhostUserVringAddress(index: UInt32(index), flags: log ? VhostUserVringAddress.flagLog : 0,
                              descriptorTable: a.descriptors, usedRing: a.deviceArea, availableRing: a.driverArea,
                              logGuestAddress: driver.usedGPA).encode(into: &p)
        try request(.setVringAddr, payload: p)
    }

    /// SET_VRING_CALL with a fresh eventfd for ring `index` (what QEMU does
    /// on interrupt mask / unmask). Returns the previous call fd, which the
    /// back-end no longer signals once this returns.
    @discardableResult
    public func replaceCall(_ index: Int) throws(VhostUserFrontendError) -> SharedEventFD? {
        guard let r = rings[index] else { return nil }
        let call: SharedEventFD
        do { call = SharedEventFD(try EventFD()) } catch { throw .system(error) }
        try request(.setVringCall, payload: u64(UInt64(index)), fds: [call.rawValue])
        let old = r.call
        r.call = call
        return old
    }

    /// SET_VRING_ENABLE.
    public func enableRing(_ index: Int, _ on: Bool) throws(VhostUserFrontendError) {
        var s: [UInt8] = []
        VhostUserVringState(index: UInt32(index), num: on ? 1 : 0).encode(into: &s)
        try request(.setVringEnable, payload: s)
    }

    /// GET_VRING_BASE: stops the ring, returns the back-end's next avail index.
    public func vringBase(_ index: Int) throws(VhostUserFrontendError) -> UInt32 {
        var s: [UInt8] = []
        VhostUserVringState(index: UInt32(index), num: 0).encode(into: &s)
        let body = try request(.getVringBase, payload: s, expectReply: true)
        guard body.count == 8 else { throw .badReply("GET_VRING_BASE: \(body.count) bytes") }
        return body.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
    }

    /// Publishes what was added to ring `index` and kicks if the device wants it.
    public func kick(_ index: Int) {
        guard let r = rings[index] else { return }
        if r.driver.publish() { r.kick.signal() }
    }

    /// Waits for `count` used entries on ring `index` (call eventfd, with a
    /// poll fallback), returning them in order; fewer on timeout.
    public func waitForUsed(_ index: Int, count: Int, timeoutMilliseconds: Int = 5000) -> [(id: UInt32, length: UInt32)] {
        guard let r = rings[index] else { return [] }
        return waitForCalls(r.call, count: count, timeoutMilliseconds: timeoutMilliseconds,
                            pop: r.driver.popUsed, enableInterrupts: r.driver.enableInterrupts)
    }

    /// SET_VRING_NUM, BASE, then `setAddress`, CALL, KICK (and ENABLE when
    /// protocol features were negotiated), with fresh kick and call eventfds.
    func setUpRingCommon(_ index: Int, size: UInt16, base: UInt32,
                         setAddress: () throws(VhostUserFrontendError) -> Void)
        throws(VhostUserFrontendError) -> (kick: SharedEventFD, call: SharedEventFD) {
        let kick: SharedEventFD, call: SharedEventFD
        do { kick = SharedEventFD(try EventFD()); call = SharedEventFD(try EventFD()) } catch { throw .system(error) }
        var s: [UInt8] = []
        VhostUserVringState(index: UInt32(index), num: UInt32(size)).encode(into: &s)
        try request(.setVringNum, payload: s)
        s = []
        VhostUserVringState(index: UInt32(index), num: base).encode(into: &s)
        try request(.setVringBase, payload: s)
        try setAddress()
        try request(.setVringCall, payload: u64(UInt64(index)), fds: [call.rawValue])
        try request(.setVringKick, payload: u64(UInt64(index)), fds: [kick.rawValue])
        if features & VhostFeature.protocolFeatures != 0 { try enableRing(index, true) }
        return (kick, call)
    }

    /// Collects `count` used entries with `pop`, sleeping on `call` (with a
    /// 10 ms poll fallback) when `enableInterrupts` says none are pending.
    func waitForCalls<T>(_ call: SharedEventFD, count: Int, timeoutMilliseconds: Int,
                         pop: () -> T?, enableInterrupts: () -> Bool) -> [T] {
        var out: [T] = []
        let p = Poller(capacity: 1)
        p.add(call.rawValue)
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while out.count < count {
            while out.count < count, let u = pop() { out.append(u) }
            if out.count >= count || monotonicNanoseconds() > deadline { break }
            if enableInterrupts() { continue }
            _ = try? p.wait(timeoutMilliseconds: 10)
            call.drain()
        }
        return out
    }

    // MARK: Config, inflight, log, back-end channel

    /// GET_CONFIG of `size` bytes at `offset`.
    public func config(offset: UInt32 = 0, size: Int) throws(VhostUserFrontendError) -> [UInt8] {
        var p: [UInt8] = []
        VhostUserConfigPayload(offset: offset, data: [UInt8](repeating: 0, count: size)).encode(into: &p)
        let body = try request(.getConfig, payload: p, expectReply: true)
        guard body.count == 12 + size else { throw .badReply("GET_CONFIG: \(body.count) bytes") }
        return Array(body[12...])
    }

    /// GET_INFLIGHT_FD: the back-end's inflight buffer and its descriptor.
    public func inflightBuffer(numQueues: UInt16, queueSize: UInt16) throws(VhostUserFrontendError) -> InflightBuffer {
        var p: [UInt8] = []
        VhostUserInflightDescriptor(mmapSize: 0, mmapOffset: 0, numQueues: numQueues, queueSize: queueSize).encode(into: &p)
        let body = try request(.getInflightFD, payload: p, expectReply: true)
        guard body.count == VhostUserInflightDescriptor.wireSize, let fd = receivedFDs?.take(0) else {
            throw .badReply("GET_INFLIGHT_FD: \(body.count) bytes, \(receivedFDs?.count ?? 0) fds")
        }
        let d = body.withUnsafeBytes { b in
            VhostUserInflightDescriptor(mmapSize: b.loadUnaligned(as: UInt64.self), mmapOffset: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                                        numQueues: b.loadUnaligned(fromByteOffset: 16, as: UInt16.self),
                                        queueSize: b.loadUnaligned(fromByteOffset: 18, as: UInt16.self))
        }
        return InflightBuffer(descriptor: d, fd: fd)
    }

    /// SET_INFLIGHT_FD (after a reconnect).
    public func setInflightBuffer(_ d: VhostUserInflightDescriptor, fd: borrowing FileDescriptor) throws(VhostUserFrontendError) {
        var p: [UInt8] = []
        d.encode(into: &p)
        try request(.setInflightFD, payload: p, fds: [fd.rawValue])
    }

    /// SET_LOG_BASE with `size` bytes of `fd` (the back-end acknowledges).
    public func setLogBase(fd: borrowing FileDescriptor, size: UInt64) throws(VhostUserFrontendError) {
        var p: [UInt8] = []
        VhostUserLogDescriptor(mmapSize: size, mmapOffset: 0).encode(into: &p)
        _ = try request(.setLogBase, payload: p, fds: [fd.rawValue], expectReply: true)
    }

    /// SET_BACKEND_REQ_FD: returns the front-end's end of the back-end request channel.
    public func openBackendChannel() throws(VhostUserFrontendError) -> VhostUserChannel {
        var pair: UnixSocketPair
        do { pair = try UnixSocket.pair() } catch { throw .system(error) }
        let mine = pair.first.take()!
        let theirs = pair.second.take()!
        try request(.setBackendReqFD, fds: [theirs.rawValue])
        return VhostUserChannel(socket: mine)
    }
}
