import Testing
@testable import VireoFabric
import VireoSys
import VireoTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Type-2 memory windows on the lab's soft-RoCE (issue #12): memory registered
/// for window binding only is unreachable under its own key; a bound window
/// grants what it was bound for, through its queue pair, until the peer
/// invalidates it with SEND_WITH_INV, and the receive completion names the key.
/// (soft-RoCE checks a window's key against the whole region under it, not the
/// window's range: range scoping is an RNIC's, and the fake verbs layer's, job.)
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct MemoryWindowIntegrationTests {
    let host = RDMAEnvironment.address

    /// A connected pair: (initiator side, target side).
    func pair() throws -> (Connection, Connection) {
        let listener = try Listener(address: FabricAddress(host: host, port: 0))
        nonisolated(unsafe) var server: Connection?
        let t = try OSThread(name: "accept") {
            guard let req = try? listener.nextRequest(timeoutMilliseconds: 10_000) else { return }
            server = try? req.accept(resources: ConnectionResources(queuePair: QueuePairConfig(sendDepth: 16, receiveDepth: 16)))
        }
        let client = try Connection.connect(to: FabricAddress(host: host, port: listener.port),
                                            resources: ConnectionResources(queuePair: QueuePairConfig(sendDepth: 16, receiveDepth: 16)))
        t.join()
        return (client, try #require(server))
    }

    func complete(_ cq: CompletionQueue) throws -> Completion {
        let completions = CompletionBuffer(capacity: 4)
        let deadline = monotonicNanoseconds() &+ 20_000_000_000
        while monotonicNanoseconds() < deadline {
            if try cq.poll(into: completions) > 0 { return completions[0] }
            usleep(500)
        }
        throw FabricError.timedOut("completion")
    }

    /// RDMA-WRITEs 512 bytes of `byte` from the target side to `(address, key)`.
    func write(_ c: Connection, _ source: RegisteredBuffer, _ address: UInt64, _ key: UInt32, _ byte: UInt8) throws -> CompletionStatus {
        source.bytes.initializeMemory(as: UInt8.self, repeating: byte)
        let b = SendBatch(capacity: 1)
        b.write(wrId: 1, local: source.region.segment(offset: 0, length: 512), remoteAddress: address, rkey: key)
        try c.queuePair.post(b)
        return try complete(c.queuePair.sendCQ).status
    }

    @Test func deviceHasType2Windows() throws {
        let info = try VerbsContext(deviceName: nil).query()
        print("memory windows: \(info)")
        #expect(info.supportsType2Windows && info.maxMemoryWindows > 0)
    }

    @Test func aWindowGrantsAccessUntilThePeerInvalidatesIt() throws {
        let (initiator, target) = try pair()
        defer { initiator.disconnect(); target.disconnect() }
        let guest = try RegisteredBuffer(pd: initiator.pd, count: 1 << 16, access: [.localWrite, .windowBind])
        let replies = try RegisteredBuffer(pd: initiator.pd, count: 64, access: [.localWrite])
        let source = try RegisteredBuffer(pd: target.pd, count: 4096, access: [.localWrite])
        let window = try initiator.registrar.allocateWindow()
        let r = RecvBatch(capacity: 1)
        r.receive(wrId: 5, local: replies.region.segment(offset: 0, length: 64))
        try initiator.queuePair.post(r)
        // Bind [4096, 8192) for remote write, signaled so the test knows it is in place.
        let key = window.nextKey
        let b = SendBatch(capacity: 1)
        b.bind(wrId: 2, window: window, key: key, region: guest.region, address: guest.region.remoteAddress(offset: 4096),
               length: 4096, access: [.remoteWrite], signaled: true)
        try initiator.queuePair.post(b)
        window.bound(key: key)
        let bound = try complete(initiator.queuePair.sendCQ)
        #expect(bound.isSuccess, "bind: \(bound.status)")
        #expect(window.key == key)
        // The window's key reaches the window.
        #expect(try write(target, source, guest.region.remoteAddress(offset: 4096), key, 0xAA) == .success)
        #expect(guest.bytes[4096..<4608].allSatisfy { $0 == 0xAA })
        // The target's response invalidates it; the initiator's receive names the key.
        let s = SendBatch(capacity: 1)
        s.send(wrId: 3, local: source.region.segment(offset: 0, length: 16), invalidating: key)
        try target.queuePair.post(s)
        #expect(try complete(target.queuePair.sendCQ).isSuccess)
        let got = try complete(initiator.queuePair.receiveCQ)
        #expect(got.isSuccess && got.invalidatedKey == key,
                "receive: \(got.status), invalidated \(String(describing: got.invalidatedKey)), key \(key), imm \(got.hasImmediate) \(got.immediate), op \(got.operation)")
        // After that, the same key is refused; the memory is unchanged.
        #expect(try write(target, source, guest.region.remoteAddress(offset: 4096), key, 0xBB) == .remoteAccessError)
        #expect(guest.bytes[4096..<4608].allSatisfy { $0 == 0xAA })
    }

    @Test func memoryRegisteredForWindowsIsUnreachableUnderItsOwnKey() throws {
        let (initiator, target) = try pair()
        defer { initiator.disconnect(); target.disconnect() }
        let guest = try RegisteredBuffer(pd: initiator.pd, count: 1 << 16, access: [.localWrite, .windowBind])
        let source = try RegisteredBuffer(pd: target.pd, count: 4096, access: [.localWrite])
        #expect(try write(target, source, guest.region.remoteAddress(offset: 0), guest.region.rkey, 0xCC) == .remoteAccessError)
        #expect(guest.bytes.prefix(512).allSatisfy { $0 == 0 })
    }
}
