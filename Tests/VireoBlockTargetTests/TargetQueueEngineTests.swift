import Logging
import Testing
import VireoAuth
import VireoBlockTarget
import VireoFabric
import VireoSys
import VireoTargetCore
import VireoTestSupport
import VireoUring
import VireoWire

/// The block target's request engine (`TargetQueue`) driven through the fake verbs
/// layer: no RDMA device, so these run on the host with the unit tests. The test
/// plays the initiator: it owns "guest memory" registered with its own fake
/// registrar, delivers capsules into the queue's posted receives, carries out the
/// RDMA READs, WRITEs and SENDs the queue posts, and feeds their completions back.
@Suite struct TargetQueueEngineTests {
    /// One queue on a memory export, installed as a worker would install it.
    final class Rig {
        let host = FakeRegistrar(firstKey: 0x10_0000)
        let guest: RegisteredBuffer
        let link: FakeLink
        let export: Export
        let geometry: BlockGeometry
        let queue: TargetQueue
        let counters = TargetCounters()
        /// Responses the target SENT, in order.
        var responses: [(tag: UInt32, status: BlockStatus)] = []
        var now: UInt64 = 0
        /// The connect request and the accept as sent (with `policy`: the handshake's inputs).
        let request: ConnectRequest
        let accept: [UInt8]
        /// With `sharedReceives`: the worker's shared receive queue and the pool posted on it.
        let srq: FakeSharedReceiveQueue?
        let pool: ReceivePool?

        /// `policy`: the queue starts with a handshake under it (hello due by `handshakeDeadline`).
        init(depth: UInt16 = 4, segments: UInt16 = 4, sendQueueDepth: Int = 32, exportBytes: UInt64 = 1 << 20,
             readOnly: Bool = false, keepalive: UInt64 = .max, timeout: UInt64 = .max,
             policy: AccessPolicy? = nil, access: AccessPolicy.Endpoint = AccessPolicy.Endpoint(allowAnyHost: true),
             hostName: String = "host-a", handshakeDeadline: UInt64 = .max, maxRegistrationBytes: Int = .max,
             sharedReceives: Int? = nil, sharedBufferSize: Int? = nil) throws {
            var config = ExportConfig(name: "mem0", backing: .memory, size: exportBytes)
            config.readOnly = readOnly
            export = try Export(config: config, logger: Logger(label: "test"))
            let request = ConnectRequest(kind: .block, name: "mem0", queueIndex: 0, queueDepth: depth,
                                         maxSegments: segments, maxIOBytes: 64 << 10, hostID: HandshakeTranscript.hostID(of: hostName),
                                         wantsWrite: !readOnly)
            self.request = request
            guard case .granted(let g) = export.grant(request) else { throw FabricError.invalidArgument(call: "grant", "refused") }
            geometry = g
            link = try FakeLink(sendDepth: sendQueueDepth, receiveDepth: Int(g.queueDepth),
                                registrar: FakeRegistrar(maxRegistrationBytes: maxRegistrationBytes))
            guest = try RegisteredBuffer(pd: host, count: 1 << 20, access: .all)
            var handshake: TargetHandshake?
            if let policy {
                accept = TargetHandshake.accept(geometry: g.encoded(), policy: policy)
                handshake = TargetHandshake(policy: policy, endpoint: access, endpointDescription: "export mem0",
                                            request: try request.encoded(), accept: accept, claimedHostID: request.hostID)
            } else {
                accept = g.encoded()
            }
            if let sharedReceives {
                let srq = FakeSharedReceiveQueue(depth: sharedReceives, registrar: link.queue.registrar)
                let pool = try ReceivePool(registrar: link.queue.registrar, count: sharedReceives,
                                           bufferSize: sharedBufferSize ?? TargetQueue.receiveSize(g), poster: srq, shared: true)
                pool.fill()
                try pool.flush(costs: DataPathCosts())
                (self.srq, self.pool) = (srq, pool)
            } else {
                (srq, pool) = (nil, nil)
            }
            queue = try TargetQueue(connection: link, export: export, geometry: g, sendQueueDepth: sendQueueDepth,
                                    handshake: handshake, handshakeDeadline: handshakeDeadline, sharedReceives: pool)
            queue.install(index: 0, generation: 1, ring: try IOUring(entries: 8), counters: counters, costs: DataPathCosts(),
                          logger: Logger(label: "test"),
                          liveness: PeerLiveness(keepaliveNanoseconds: keepalive, timeoutNanoseconds: timeout, now: 0))
        }

        /// A segment of guest memory.
        func segment(_ offset: Int, _ length: Int) -> WireSegment {
            WireSegment(address: guest.region.remoteAddress(offset: offset), length: UInt32(length), rkey: guest.region.rkey)
        }

        /// A command capsule's bytes.
        func capsule(_ op: BlockOpcode, tag: UInt32, offset: UInt64 = 0, length: UInt32 = 0,
                     segments: [WireSegment] = [], flags: CommandFlags = [], inline: [UInt8] = []) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: Wire.commandSize(segments: segments.count, inline: inline.count))
            bytes.withUnsafeMutableBytes { b in
                let p = b.baseAddress!
                var n = CommandWriter.writeHeader(p, opcode: op, flags: flags, segmentCount: segments.count, tag: tag,
                                                  offset: offset, length: length, inlineLength: inline.count)
                for (i, s) in segments.enumerated() { CommandWriter.setSegment(p, i, s) }
                n += segments.count * Wire.segmentSize
                inline.withUnsafeBytes { (p + n).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            return bytes
        }

        /// The initiator SENDs `capsule`: it lands in the oldest posted receive (of the shared pool, with one).
        func send(_ capsule: [UInt8]) {
            guard let c = srq.map({ $0.deliver(capsule, on: link) }) ?? link.queue.deliver(capsule) else {
                Issue.record("no receive posted: the target let its receive queue run dry")
                return
            }
            queue.completedAlone(c)
        }

        /// Carries out every send the target posted (and any its completions make it post),
        /// feeding completions back; `hold` keeps response SEND completions back (returned).
        @discardableResult
        func run(holdResponses: Bool = false) -> [Completion] {
            var held: [Completion] = []
            link.queue.runAllSends(peer: host) { o in
                if o.request.operation == .send, o.payload.count == Wire.responseSize {
                    let r = o.payload.withUnsafeBytes { ResponseCapsule.read($0.baseAddress!, byteCount: $0.count) }
                    if let r { responses.append((r.tag, r.status)) }
                }
                guard let c = o.completion else { return }
                if holdResponses, o.request.operation == .send { held.append(c) } else { queue.completedAlone(c) }
            }
            return held
        }

        func fill(_ offset: Int, _ bytes: [UInt8]) {
            bytes.withUnsafeBytes { guest.bytes.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }

        func read(_ offset: Int, _ count: Int) -> [UInt8] {
            Array(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(guest.bytes)[offset..<offset + count]))
        }

        var exportBytes: UnsafeMutableRawPointer { export.store.memory! }
    }

    static func pattern(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31) &+ seed } }

    @Test func installPostsEveryReceiveInOneCall() throws {
        let rig = try Rig(depth: 8)
        #expect(rig.link.queue.receives.count == 8)
        #expect(rig.link.queue.receivePostCalls == 1)
        #expect(rig.link.queue.sends.isEmpty)
    }

    /// Normal flow: a WRITE from two guest segments is RDMA-READ into the export, a READ
    /// RDMA-WRITEs it back into two other guest segments, each answered with its tag.
    @Test func writeThenReadMovesTheGuestsBytes() throws {
        let rig = try Rig()
        let data = Self.pattern(8192, seed: 3)
        rig.fill(0, data)
        rig.send(rig.capsule(.write, tag: 7, offset: 4096, length: 8192, segments: [rig.segment(0, 4096), rig.segment(4096, 4096)]))
        let reads = rig.link.queue.sends
        #expect(reads.map(\.operation) == [.read, .read])
        #expect(reads.map(\.signaled) == [false, true], "one completion per transfer: only the last READ is signaled")
        rig.run()
        #expect(rig.responses.count == 1 && rig.responses[0].tag == 7 && rig.responses[0].status == .ok)
        #expect(Array(UnsafeRawBufferPointer(start: rig.exportBytes + 4096, count: 8192)) == data)

        rig.send(rig.capsule(.read, tag: 8, offset: 4096, length: 8192, segments: [rig.segment(65536, 8192)]))
        let chain = rig.link.queue.sends
        #expect(chain.map(\.operation) == [.write, .send], "data WRITE and response SEND go in one chain")
        #expect(chain[0].signaled == false && chain[1].signaled && chain[1].inline)
        rig.run()
        #expect(rig.responses.last?.tag == 8 && rig.responses.last?.status == .ok)
        #expect(rig.read(65536, 8192) == data)
        #expect(rig.counters.bytesWritten == 8192 && rig.counters.bytesRead == 8192)
        #expect(rig.queue.dropReason == nil)
        #expect(rig.link.queue.sendQueueUsed == 0, "every send-queue entry came back")
        #expect(rig.link.queue.receives.count == 4, "every receive was reposted")
    }

    /// A memory export registered with the connection's PD: WRITE data is RDMA-READ
    /// straight into the export and READ data RDMA-WRITTEN straight from it, with no
    /// byte through a bounce buffer (#13: zero payload copies on the target).
    @Test func registeredMemoryExportCopiesNoPayload() throws {
        let rig = try Rig()
        #expect(rig.queue.isZeroCopy)
        let data = Self.pattern(8192, seed: 5)
        rig.fill(0, data)
        rig.send(rig.capsule(.write, tag: 1, offset: 8192, length: 8192, segments: [rig.segment(0, 8192)]))
        rig.run()
        rig.send(rig.capsule(.read, tag: 2, offset: 8192, length: 8192, segments: [rig.segment(16384, 8192)]))
        rig.run()
        #expect(rig.responses.map(\.status) == [.ok, .ok])
        #expect(Array(UnsafeRawBufferPointer(start: rig.exportBytes + 8192, count: 8192)) == data)
        #expect(rig.read(16384, 8192) == data)
        #expect(rig.counters.payloadBytesCopied == 0)
    }

    /// A memory export the RNIC will not register (a memlock limit) is still served,
    /// through bounce buffers, and every byte copied is counted.
    @Test func unregisteredMemoryExportFallsBackToBounceBuffersAndCountsTheCopies() throws {
        let rig = try Rig(exportBytes: 1 << 20, maxRegistrationBytes: 512 << 10)
        #expect(!rig.queue.isZeroCopy)
        let data = Self.pattern(4096, seed: 6)
        rig.fill(0, data)
        rig.send(rig.capsule(.write, tag: 1, offset: 0, length: 4096, segments: [rig.segment(0, 4096)]))
        rig.run()
        rig.send(rig.capsule(.read, tag: 2, offset: 0, length: 4096, segments: [rig.segment(8192, 4096)]))
        rig.run()
        #expect(rig.responses.map(\.status) == [.ok, .ok])
        #expect(rig.read(8192, 4096) == data)
        #expect(rig.counters.payloadBytesCopied == 8192)
    }

    /// What one worker pass produces is posted together: four READs delivered in one
    /// pass go out as one ibv_post_send (4 data WRITEs + 4 responses) and one
    /// ibv_post_recv (the 4 receives back), not one pair of calls per command.
    @Test func aPassOfCommandsIsPostedInOneCallEach() throws {
        let rig = try Rig(depth: 8)
        let sendsBefore = rig.link.queue.sendPostCalls, receivesBefore = rig.link.queue.receivePostCalls
        for t in 0..<4 {
            let c = rig.link.queue.deliver(rig.capsule(.read, tag: UInt32(t), offset: UInt64(t) * 4096, length: 4096,
                                                       segments: [rig.segment(t * 4096, 4096)]))!
            rig.queue.completed(c)   // as the worker's pass does: no flush per completion
        }
        #expect(rig.link.queue.sends.isEmpty, "nothing is posted before the pass ends")
        #expect(rig.queue.needsFlush)
        rig.queue.flushPosts()
        #expect(rig.link.queue.sendPostCalls == sendsBefore + 1)
        #expect(rig.link.queue.receivePostCalls == receivesBefore + 1)
        #expect(rig.link.queue.sends.map(\.operation) == [.write, .send, .write, .send, .write, .send, .write, .send])
        rig.run()
        #expect(rig.responses.map(\.tag) == [0, 1, 2, 3])
        #expect(rig.link.queue.receives.count == 8)
    }

    /// An inline WRITE needs no RDMA READ: its data is in the capsule.
    @Test func inlineWriteIsExecutedFromTheCapsule() throws {
        let rig = try Rig()
        let data = Self.pattern(512, seed: 9)
        rig.send(rig.capsule(.write, tag: 1, offset: 0, length: 512, flags: .inlineData, inline: data))
        #expect(rig.link.queue.sends.map(\.operation) == [.send])
        rig.run()
        #expect(rig.responses.map(\.status) == [.ok])
        #expect(Array(UnsafeRawBufferPointer(start: rig.exportBytes, count: 512)) == data)
    }

    /// A command the export cannot serve is answered with its status; the connection stays.
    @Test func refusedCommandsAreAnsweredAndTheConnectionStays() throws {
        let rig = try Rig(exportBytes: 1 << 20)
        rig.send(rig.capsule(.read, tag: 1, offset: 1 << 20, length: 4096, segments: [rig.segment(0, 4096)]))
        rig.run()
        #expect(rig.responses.map(\.status) == [.outOfRange])
        let ro = try Rig(readOnly: true)
        ro.send(ro.capsule(.write, tag: 2, offset: 0, length: 4096, segments: [ro.segment(0, 4096)]))
        #expect(ro.link.queue.sends.map(\.operation) == [.send], "a refused WRITE reads nothing from the guest")
        ro.run()
        #expect(ro.responses.map(\.status) == [.readOnly])
        #expect(rig.queue.dropReason == nil && ro.queue.dropReason == nil)
    }

    /// Credit exhaustion on the send queue: with room for 3 work requests, four 2-segment
    /// WRITEs wait their turn, in arrival order, and the queue never overflows.
    @Test func sendQueueExhaustionQueuesRequestsInOrder() throws {
        let rig = try Rig(depth: 4, sendQueueDepth: 3)
        for t in 0..<4 {
            rig.fill(t * 8192, Self.pattern(8192, seed: UInt8(t)))
            rig.send(rig.capsule(.write, tag: UInt32(t), offset: UInt64(t) * 8192, length: 8192,
                                 segments: [rig.segment(t * 8192, 4096), rig.segment(t * 8192 + 4096, 4096)]))
        }
        #expect(rig.link.queue.sends.count == 2, "only the first WRITE's READs fit: the others wait")
        rig.run()
        #expect(rig.responses.map(\.tag) == [0, 1, 2, 3])
        #expect(rig.responses.allSatisfy { $0.status == .ok })
        #expect(rig.link.queue.mostSendQueueUsed <= 3)
        for t in 0..<4 {
            #expect(Array(UnsafeRawBufferPointer(start: rig.exportBytes + t * 8192, count: 8192)) == Self.pattern(8192, seed: UInt8(t)))
        }
        #expect(rig.queue.dropReason == nil)
    }

    /// A capsule that arrives while every request slot is busy (its receive was reposted
    /// before the response completed) waits for a slot, then runs.
    @Test func capsuleArrivingWithEverySlotBusyWaitsForOne() throws {
        let rig = try Rig(depth: 2)
        rig.send(rig.capsule(.flush, tag: 1))
        rig.send(rig.capsule(.flush, tag: 2))
        let held = rig.run(holdResponses: true)
        #expect(held.count == 2, "both responses are out, their completions not yet seen")
        rig.send(rig.capsule(.flush, tag: 3))
        #expect(rig.link.queue.sends.isEmpty, "no slot is free: nothing runs yet")
        rig.queue.completedAlone(held[0])
        rig.run()
        #expect(rig.responses.map(\.tag) == [1, 2, 3])
        rig.queue.completedAlone(held[1])
        #expect(rig.queue.dropReason == nil)
    }

    /// A flushed completion means the QP went to error: the queue goes, as an orderly disconnect.
    @Test func flushedWorkMeansDisconnected() throws {
        let rig = try Rig()
        rig.send(rig.capsule(.write, tag: 1, offset: 0, length: 4096, segments: [rig.segment(0, 4096)]))
        for c in rig.link.queue.flushAll() { rig.queue.completedAlone(c) }
        #expect(rig.queue.dropReason == "disconnected")
        #expect(rig.queue.dropFault == nil)
        #expect(rig.responses.isEmpty)
    }

    /// The peer's RNIC refuses the READ of its buffers (a bad key): the connection is dropped
    /// as a transfer failure; a vanished peer (retries exhausted) as unreachable.
    @Test func failedTransfersDropTheConnectionWithTheirFault() throws {
        let rig = try Rig()
        var bad = rig.segment(0, 4096)
        bad.rkey ^= 0xff
        rig.send(rig.capsule(.write, tag: 1, offset: 0, length: 4096, segments: [bad]))
        rig.run()
        #expect(rig.queue.dropFault == .transferFailed)

        let gone = try Rig()
        gone.send(gone.capsule(.flush, tag: 1))
        gone.link.queue.failNextSend = .retryExceeded
        gone.run()
        #expect(gone.queue.dropFault == .peerUnreachable)
    }

    /// A post the provider refuses drops the connection (`postFailed`), never traps.
    @Test func refusedPostDropsTheConnection() throws {
        let rig = try Rig()
        rig.link.queue.failNextPost = .call(SystemError(call: "ibv_post_send", errno: 12))
        rig.send(rig.capsule(.flush, tag: 1))
        #expect(rig.queue.dropFault == .postFailed)
    }

    /// Liveness: an idle, silent peer is probed with a zero-length WRITE; an answered probe
    /// keeps it; a probe left unanswered past the timeout drops it as unreachable.
    @Test func silentPeerIsProbedThenDropped() throws {
        let s: UInt64 = 1_000_000_000
        let rig = try Rig(keepalive: 1 * s, timeout: 4 * s)
        rig.queue.checkLiveness(now: 2 * s)
        let probe = try #require(rig.link.queue.sends.first)
        #expect(probe.operation == .write && probe.segments.isEmpty && probe.signaled)
        rig.run()
        #expect(rig.counters.livenessProbes == 1)
        rig.queue.checkLiveness(now: 4 * s)
        #expect(rig.link.queue.sends.isEmpty, "the answer counts as a sign of life at this tick")
        rig.queue.checkLiveness(now: 5 * s + s / 2)
        #expect(rig.link.queue.sends.count == 1, "silent for the keepalive again: probed again")
        rig.queue.checkLiveness(now: 7 * s)
        #expect(rig.queue.dropReason == nil, "3 s since the last sign of life: not yet overdue")
        rig.queue.checkLiveness(now: 8 * s)
        #expect(rig.queue.dropFault == .peerUnreachable)
    }
}
