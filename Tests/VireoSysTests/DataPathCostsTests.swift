#if canImport(Glibc)
import Glibc
#endif
import Testing
import VireoSys

/// The data path's cost counters: one writer per instance, summed per process, and kept
/// when a thread's instance goes away (the stats file's totals never go backwards).
@Suite struct DataPathCostsTests {
    @Test func countsSumPerProcessAndSurviveTheirThread() {
        let before = DataPathCosts.processTotals()
        let a = DataPathCosts()
        a.count(.sendPosts)
        a.count(.sendPosts, 2)
        a.count(.sleeps)
        #expect(a.value(.sendPosts) == 3 && a.value(.sleeps) == 1 && a.value(.eventfdWrites) == 0)
        do {
            let b = DataPathCosts()
            b.count(.eventfdWrites, 5)
            let live = DataPathCosts.processTotals()
            #expect(live[DataPathCosts.Event.eventfdWrites.rawValue] >= before[DataPathCosts.Event.eventfdWrites.rawValue] + 5)
            withExtendedLifetime(b) {}
        }
        // b is gone: its counts stay in the totals.
        let after = DataPathCosts.processTotals()
        #expect(after[DataPathCosts.Event.eventfdWrites.rawValue] >= before[DataPathCosts.Event.eventfdWrites.rawValue] + 5)
        #expect(after[DataPathCosts.Event.sendPosts.rawValue] >= before[DataPathCosts.Event.sendPosts.rawValue] + 3)
        withExtendedLifetime(a) {}
    }

    /// Which events enter the kernel on soft-RoCE: what the report sums as system calls.
    @Test func systemCallsAreEverythingButReceivePostsAndEmptyPolls() {
        let calls = DataPathCosts.Event.allCases.filter(\.isSystemCall)
        #expect(!calls.contains(.receivePosts) && !calls.contains(.emptyPolls))
        #expect(calls.count == DataPathCosts.Event.allCases.count - 2)
        #expect(Set(DataPathCosts.Event.allCases.map(\.name)).count == DataPathCosts.Event.allCases.count)
    }
}

/// The cycle clock the latency histograms use (no system call per reading): its rate is
/// measured against CLOCK_MONOTONIC, so a 50 ms sleep reads as about 50 ms.
@Suite struct CycleClockTests {
    @Test func aSleepReadsAsItsLength() {
        CycleClock.calibrate()
        let c0 = CycleClock.now, t0 = monotonicNanoseconds()
        usleep(50_000)
        let c1 = CycleClock.now, t1 = monotonicNanoseconds()
        let measured = Double(CycleClock.nanoseconds(from: c0, to: c1)), actual = Double(t1 &- t0)
        #expect(abs(measured - actual) / actual < 0.2, "cycle clock \(measured) ns, CLOCK_MONOTONIC \(actual) ns")
        #expect(CycleClock.nanoseconds(from: c1, to: c0) == 0, "a reading before the start counts as no time")
    }
}
