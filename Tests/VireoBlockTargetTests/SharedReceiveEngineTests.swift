import Testing
import VireoBlockTarget
import VireoFabric
import VireoSys
import VireoTargetCore
import VireoTestSupport
import VireoWire

/// A block queue on its worker's shared receive pool (#13: a shared receive queue per
/// worker, so receive memory does not grow with connections), driven through the fake
/// verbs: commands arrive in pool buffers named by the completion's queue-pair number,
/// the buffers go back to the pool, and an initiator that sends beyond its credit cannot
/// take the buffers the worker's other connections need.
@Suite struct SharedReceiveEngineTests {
    typealias Rig = TargetQueueEngineTests.Rig
    static let pattern = TargetQueueEngineTests.pattern

    @Test func aQueueOnTheSharedPoolPostsNoReceivesOfItsOwn() throws {
        let rig = try Rig(depth: 8, sharedReceives: 16)
        #expect(rig.queue.usesSharedReceives)
        #expect(rig.link.queue.receivePostCalls == 0 && rig.link.queue.receives.isEmpty)
        #expect(rig.srq!.posted == 16)
        #expect(rig.queue.completionBudget == 32, "its send queue only: the pool's receives are the worker's to budget")
        let g = rig.geometry
        #expect(TargetQueue.registeredBytes(g, sharedReceives: true)
                == TargetQueue.registeredBytes(g) - Int(g.queueDepth) * TargetQueue.receiveSize(g))
    }

    /// WRITE then READ through pool buffers: the data moves, and every buffer is back in
    /// the pool, posted, once the commands are answered.
    @Test func commandsArriveInPoolBuffersWhichGoBack() throws {
        let rig = try Rig(depth: 4, sharedReceives: 8)
        let data = Self.pattern(8192, 4)
        rig.fill(0, data)
        rig.send(rig.capsule(.write, tag: 1, offset: 4096, length: 8192, segments: [rig.segment(0, 8192)]))
        rig.run()
        rig.send(rig.capsule(.read, tag: 2, offset: 4096, length: 8192, segments: [rig.segment(65536, 8192)]))
        rig.run()
        #expect(rig.responses.map(\.tag) == [1, 2] && rig.responses.allSatisfy { $0.status == .ok })
        #expect(rig.read(65536, 8192) == data)
        #expect(rig.srq!.posted == 8, "both buffers went back to the pool")
        #expect(rig.pool!.held == 0 && rig.pool!.mostHeld == 1)
        #expect(rig.queue.dropReason == nil)
    }

    /// An inline WRITE is stored from its pool buffer, which goes back only after.
    @Test func inlineWriteIsStoredFromThePoolBuffer() throws {
        let rig = try Rig(sharedReceives: 8)
        let data = Self.pattern(512, 11)
        rig.send(rig.capsule(.write, tag: 3, offset: 1024, length: 512, flags: .inlineData, inline: data))
        rig.run()
        #expect(rig.responses.map(\.status) == [.ok])
        #expect(Array(UnsafeRawBufferPointer(start: rig.exportBytes + 1024, count: 512)) == data)
        #expect(rig.srq!.posted == 8)
    }

    /// Depth 2 granted, three commands sent without waiting for an answer: the third would
    /// take a buffer beyond the connection's credit. The connection is dropped with
    /// `creditExceeded`, and retiring it gives every buffer it held back to the pool.
    @Test func anInitiatorBeyondItsCreditIsDroppedAndItsBuffersReturn() throws {
        let rig = try Rig(depth: 2, sharedReceives: 8)
        // WRITEs whose RDMA READs are not run: each command holds its buffer.
        for t in 0..<2 {
            rig.send(rig.capsule(.write, tag: UInt32(t), offset: 0, length: 4096, segments: [rig.segment(0, 4096)]))
        }
        #expect(rig.queue.dropReason == nil, "two commands in flight are within depth 2")
        #expect(rig.pool!.held == 2)
        rig.send(rig.capsule(.write, tag: 2, offset: 0, length: 4096, segments: [rig.segment(0, 4096)]))
        #expect(rig.queue.dropFault == .creditExceeded)
        #expect(rig.queue.dropReason?.contains("queue depth 2") == true)
        #expect(rig.pool!.held == 2, "the refused command's buffer went straight back")
        rig.queue.returnSharedReceives()
        try rig.pool!.flush(costs: DataPathCosts())
        #expect(rig.pool!.held == 0 && rig.srq!.posted == 8, "retirement gives back what the queue held")
    }

    /// A command that finds every slot busy waits in its buffer (within credit) and runs
    /// when a slot frees: the buffer is held, not lost or refused.
    @Test func aCommandWaitingForASlotKeepsItsBuffer() throws {
        let rig = try Rig(depth: 2, sharedReceives: 8)
        rig.send(rig.capsule(.read, tag: 1, offset: 0, length: 4096, segments: [rig.segment(0, 4096)]))
        rig.send(rig.capsule(.read, tag: 2, offset: 0, length: 4096, segments: [rig.segment(4096, 4096)]))
        // Both answered, responses not yet completed: both slots stay busy, both buffers are back.
        let held = rig.run(holdResponses: true)
        #expect(rig.pool!.held == 0)
        rig.send(rig.capsule(.read, tag: 3, offset: 0, length: 4096, segments: [rig.segment(8192, 4096)]))
        #expect(rig.pool!.held == 1, "the third command waits for a slot in its buffer")
        #expect(rig.queue.dropReason == nil)
        for c in held { rig.queue.completedAlone(c) }
        rig.run()
        #expect(rig.responses.map(\.tag) == [1, 2, 3])
        #expect(rig.pool!.held == 0 && rig.srq!.posted == 8)
    }

    /// A receive that fails (a SEND longer than the buffer) fails that connection only:
    /// its buffer goes back and the pool keeps serving.
    @Test func aFailedSharedReceiveDropsOnlyItsConnection() throws {
        let rig = try Rig(depth: 2, sharedReceives: 4)
        let tooLong = [UInt8](repeating: 0, count: rig.pool!.bufferSize + 1)
        let c = try #require(rig.srq!.deliver(tooLong, on: rig.link))
        #expect(!c.isSuccess && c.qpNumber == rig.link.queuePairNumber)
        rig.queue.completedAlone(c)
        #expect(rig.queue.dropFault == .receiveFailed)
        #expect(rig.pool!.held == 0 && rig.srq!.posted == 4)
    }

    /// Every way a hello can end gives its buffer back, and so does every SEND after a refused
    /// one: a peer refused or broken at the handshake keeps no pool buffer (found in review:
    /// they were kept, so an unknown host could drain a worker's pool with refused hellos).
    @Test func refusedAndBrokenHellosKeepNoPoolBuffer() throws {
        typealias H = TargetHandshakeEngineTests
        let refused = try Rig(depth: 4, policy: H.policy, access: H.onlyA, hostName: "host-z", sharedReceives: 8)
        refused.send(try H.hello(refused, host: "host-z", key: H.secret))
        for t in 0..<4 { refused.send(refused.capsule(.flush, tag: UInt32(t))) }
        #expect(refused.pool!.held == 0, "the hello's and the later SENDs' buffers went back")
        refused.run()
        #expect(refused.queue.dropFault == .authenticationRefused)
        #expect(refused.srq!.posted == 8)

        let broken = try Rig(depth: 4, policy: H.policy, access: H.onlyA, sharedReceives: 8)
        broken.send([1, 2, 3])
        #expect(broken.queue.dropFault == .handshakeFailed)
        #expect(broken.pool!.held == 0 && broken.srq!.posted == 8)
    }

    /// A grant whose commands do not fit the pool's buffers is refused the pool.
    @Test func aPoolWithTooSmallBuffersIsRefused() throws {
        #expect(throws: FabricError.self) { try Rig(sharedReceives: 4, sharedBufferSize: 64) }
    }
}
