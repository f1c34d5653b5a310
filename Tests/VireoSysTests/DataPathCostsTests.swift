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
