import Testing
import VireoFabric
import VireoTestSupport

/// The fake verbs layer's memory windows behave as the lab's RNIC does (MemoryWindowIntegrationTests),
/// and scope their range as a real RNIC does: the engines' window tests run on the host against it.
struct FakeWindowTests {
    @Test func windowsGrantTheirRangeUntilInvalidated() throws {
        let initiator = FakeRegistrar(firstKey: 0x10)
        let target = FakeRegistrar(firstKey: 0x9000)
        let guest = try RegisteredBuffer(pd: initiator, count: 1 << 16, access: [.localWrite, .windowBind])
        let sq = FakeWorkQueue(sendDepth: 8, receiveDepth: 8, registrar: initiator)
        let window = try initiator.allocateWindow()
        let key = window.nextKey
        let b = SendBatch(capacity: 2)
        b.bind(wrId: 1, window: window, key: key, region: guest.region, address: guest.region.remoteAddress(offset: 4096),
               length: 4096, access: [.remoteWrite])
        try sq.post(b)
        window.bound(key: key)
        #expect(sq.runNextSend(peer: target)?.completion == nil, "an unsignaled bind completes silently")
        // Inside the window: reachable for write, not for read; outside or under the region's key: not at all.
        #expect(initiator.remote(address: guest.region.remoteAddress(offset: 4096), length: 4096, rkey: key, write: true) != nil)
        #expect(initiator.remote(address: guest.region.remoteAddress(offset: 4096), length: 16, rkey: key, write: false) == nil)
        #expect(initiator.remote(address: guest.region.remoteAddress(offset: 4095), length: 2, rkey: key, write: true) == nil)
        #expect(initiator.remote(address: guest.region.remoteAddress(offset: 8192), length: 1, rkey: key, write: true) == nil)
        #expect(initiator.remote(address: guest.region.remoteAddress(offset: 0), length: 1, rkey: guest.region.rkey, write: true) == nil)
        // A SEND_WITH_INV delivered here invalidates it; the completion names the key; it is gone.
        let rq = RecvBatch(capacity: 1)
        let replies = try RegisteredBuffer(pd: initiator, count: 64, access: [.localWrite])
        rq.receive(wrId: 7, local: replies.region.segment(offset: 0, length: 64))
        try sq.post(rq)
        let c = try #require(sq.deliver([1, 2, 3], invalidating: key))
        #expect(c.isSuccess && c.invalidatedKey == key)
        #expect(initiator.remote(address: guest.region.remoteAddress(offset: 4096), length: 1, rkey: key, write: true) == nil)
        // Rebound under the next key; a local invalidation ends it too.
        let key2 = window.nextKey
        #expect(key2 != key)
        b.reset()
        b.bind(wrId: 2, window: window, key: key2, region: guest.region, address: guest.region.remoteAddress(offset: 0),
               length: 512, access: [.remoteRead])
        b.localInvalidate(wrId: 3, key: key2)
        try sq.post(b)
        window.bound(key: key2)
        _ = sq.runNextSend(peer: target)
        #expect(initiator.isWindowBound(key2))
        #expect(sq.runNextSend(peer: target)?.completion?.isSuccess == true)
        #expect(!initiator.isWindowBound(key2))
    }
}
