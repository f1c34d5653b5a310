import Testing
import VireoTargetCore

/// The liveness rule on its own, with a fake clock: a completion resets the silence, idle
/// silence asks for a probe, silence with work posted past the timeout is a vanished peer.
struct PeerLivenessTests {
    static let s: UInt64 = 1_000_000_000

    @Test func idleSilenceAsksForAProbeAndAnAnswerResetsIt() {
        var l = PeerLiveness(keepaliveNanoseconds: 5 * Self.s, timeoutNanoseconds: 15 * Self.s, now: 0)
        #expect(l.check(now: 4 * Self.s, waiting: false) == .alive)
        #expect(l.check(now: 5 * Self.s, waiting: false) == .probe)
        // The probe is posted (waiting) and answered: alive, and the silence starts again.
        #expect(l.check(now: 6 * Self.s, waiting: true) == .alive)
        l.heard()
        #expect(l.check(now: 7 * Self.s, waiting: false) == .alive)
        #expect(l.check(now: 11 * Self.s, waiting: false) == .alive)
        #expect(l.check(now: 12 * Self.s, waiting: false) == .probe)
    }

    @Test func unansweredWorkPastTheTimeoutIsAVanishedPeer() {
        var l = PeerLiveness(keepaliveNanoseconds: 5 * Self.s, timeoutNanoseconds: 15 * Self.s, now: 100 * Self.s)
        #expect(l.check(now: 105 * Self.s, waiting: false) == .probe)
        #expect(l.check(now: 114 * Self.s, waiting: true) == .alive)
        #expect(l.check(now: 115 * Self.s, waiting: true) == .gone(silentNanoseconds: 15 * Self.s))
    }

    /// One probe at a time: while it is out the connection is waiting on it, and the reason
    /// for dropping names it.
    @Test func anOutstandingProbeIsWaitedOnNotRepeated() {
        var l = PeerLiveness(keepaliveNanoseconds: 5 * Self.s, timeoutNanoseconds: 15 * Self.s, now: 0)
        #expect(l.check(now: 5 * Self.s, waiting: false) == .probe)
        l.probePosted()
        #expect(l.check(now: 10 * Self.s, waiting: false) == .alive)
        #expect(l.check(now: 15 * Self.s, waiting: false) == .gone(silentNanoseconds: 15 * Self.s))
        #expect(l.vanishedReason(silentNanoseconds: 15 * Self.s, work: "posted work")
            == "no completion from the peer for 15000 ms with a liveness probe outstanding (peer timeout 15000 ms): "
            + "it vanished without a DISCONNECT")
        l.probeAnswered()
        l.heard()
        #expect(l.check(now: 16 * Self.s, waiting: false) == .alive)
        #expect(l.vanishedReason(silentNanoseconds: 1, work: "posted sends").contains("with posted sends outstanding"))
    }

    /// Busy connections are never probed: any completion between ticks keeps them alive,
    /// however long the work has been outstanding overall.
    @Test func steadyCompletionsKeepABusyPeerAlive() {
        var l = PeerLiveness(keepaliveNanoseconds: 5 * Self.s, timeoutNanoseconds: 15 * Self.s, now: 0)
        for t in 1...100 {
            l.heard()
            #expect(l.check(now: UInt64(t) * Self.s, waiting: true) == .alive)
        }
        // A clock that steps back (it must not) is treated as no silence, never as an overflow.
        #expect(l.check(now: 50 * Self.s, waiting: true) == .alive)
    }
}
