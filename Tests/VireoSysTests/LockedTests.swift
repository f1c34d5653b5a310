import Testing
import VireoSys

@Suite struct LockedTests {
    /// Two OS threads increment one counter under the lock: no update is
    /// lost. Under ThreadSanitizer (deploy/sanitizers/run thread) this is
    /// also the check that TSan sees the lock; `Synchronization.Mutex`
    /// fails it there with a "Swift access race".
    @Test func countersUnderTheLockLoseNoUpdate() throws {
        final class Shared: @unchecked Sendable {
            let lock = Locked(0)
            // SAFETY: touched only inside `lock.withLock` (the point of the test).
            var outside = 0
        }
        let shared = Shared()
        let rounds = 20_000
        let threads = try (0..<2).map { i in
            try OSThread(name: "locked-\(i)") {
                for _ in 0..<rounds {
                    shared.lock.withLock { $0 += 1 }
                    shared.lock.withLock { _ in shared.outside += 1 }
                }
            }
        }
        for t in threads { t.join() }
        #expect(shared.lock.withLock { $0 } == 2 * rounds)
        #expect(shared.lock.withLock { _ in shared.outside } == 2 * rounds)
    }

    @Test func withLockReturnsAndRethrowsTypedErrors() {
        struct Refused: Error, Equatable {}
        let names = Locked<[String]>([])
        let n = names.withLock { v -> Int in v.append("a"); return v.count }
        #expect(n == 1)
        #expect(throws: Refused()) {
            try names.withLock { (v) throws(Refused) -> Void in
                v.append("b")
                throw Refused()
            }
        }
        // A throw leaves the lock released and keeps what the body wrote.
        #expect(names.withLock { $0 } == ["a", "b"])
    }
}
