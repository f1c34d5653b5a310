import Foundation
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// A ring start signals the ring's call once. A back-end that dies between
/// publishing used entries and its deferred call (the worker batches calls
/// per round) leaves the driver with entries it was never told about; with
/// nothing else outstanding (a disk whose requests all completed) the guest
/// would wait forever. The restarted back-end cannot know, so every ring
/// start interrupts once: a spurious interrupt is harmless (the driver finds
/// nothing new, virtio 1.x §2.7.14), a lost one is a hang.
@Suite(.serialized) struct RingStartCallTests {
    /// Whether `call` was signalled within `milliseconds` (and drains it).
    private func signalled(_ call: SharedEventFD, within milliseconds: Int32 = 1000) -> Bool {
        let p = Poller(capacity: 1)
        _ = p.add(call.rawValue)
        guard let n = try? p.wait(timeoutMilliseconds: milliseconds), n > 0 else { return false }
        return call.drain() > 0
    }

    /// The old back-end published a used entry and died before calling:
    /// the restarted one's ring start (CALL, then KICK, as this front-end
    /// and cloud-hypervisor send them) interrupts the driver once.
    @Test func startAfterCallSignalsOnce() throws {
        let rig = try BlockRig(tag: "start-call", queues: 1)
        var fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        try fe.setUpRing(0, driver: q)
        let call0 = try #require(fe.rings[0]).call
        _ = signalled(call0, within: 200)
        try rig.reconnect()
        fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        try fe.setUpRing(0, driver: q, base: q.lastUsedIdx)
        let call = try #require(fe.rings[0]).call
        #expect(signalled(call))
        // Once: an idle ring does not keep interrupting.
        #expect(!signalled(call, within: 200))
    }

    /// QEMU's vhost_virtqueue_start sends KICK before the call is set up:
    /// the start owes the call, and the first SET_VRING_CALL pays it; later
    /// ones (QEMU re-sends CALL on interrupt mask changes) do not.
    @Test func callAfterStartIsSignalledOnce() throws {
        let rig = try BlockRig(tag: "start-call-late", queues: 1)
        let fe = rig.frontend
        try fe.negotiate(wanted: blockFeatures)
        try fe.setMemTable(rig.memory)
        let q = SplitDriverQueue(memory: rig.memory, size: 16, eventIdx: true)
        var s: [UInt8] = []
        VhostUserVringState(index: 0, num: 16).encode(into: &s)
        try fe.request(.setVringNum, payload: s)
        s = []
        VhostUserVringState(index: 0, num: 0).encode(into: &s)
        try fe.request(.setVringBase, payload: s)
        try fe.setRingAddress(0, driver: q)
        let kick = SharedEventFD(try EventFD())
        try fe.request(.setVringKick, payload: u64(0), fds: [kick.rawValue])
        let call = SharedEventFD(try EventFD())
        try fe.request(.setVringCall, payload: u64(0), fds: [call.rawValue])
        _ = try fe.request(.getFeatures, expectReply: true)    // a round trip: the CALL was applied
        #expect(signalled(call))
        let again = SharedEventFD(try EventFD())
        try fe.request(.setVringCall, payload: u64(0), fds: [again.rawValue])
        _ = try fe.request(.getFeatures, expectReply: true)
        #expect(!signalled(again, within: 200))
    }
}
