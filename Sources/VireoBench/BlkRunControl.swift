import Synchronization
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// What the main thread and the queue workers of one `vireo-bench blk` run
/// share: the window's end (the main thread may bring it forward, `--stop-file`)
/// and the pause handshake around a backend reconnect. The hot path reads one
/// flag per loop; the handshake itself takes a lock.
final class BlkRunControl: Sendable {
    /// Monotonic ns at which the measured window ends and no new request starts.
    let end: Atomic<UInt64>
    private let pausing = Atomic<Bool>(false)
    private let state: Locked<State>
    /// How long a parked worker waits for the main thread's verdict before giving up on its own.
    let parkLimitNanoseconds: UInt64

    private struct State {
        var parked: [Bool]
        var finished: [Bool]
        var generation = 0
        var abandoned = false
    }

    init(queues: Int, end: UInt64, parkLimitSeconds: Double) {
        self.end = Atomic(end)
        state = Locked(State(parked: Array(repeating: false, count: queues), finished: Array(repeating: false, count: queues)))
        parkLimitNanoseconds = UInt64(max(parkLimitSeconds, 1) * 1e9)
    }

    // MARK: worker side

    /// Whether the main thread asked the workers to park (one load per loop).
    @inline(__always) func pauseRequested(_ queue: Int) -> Bool { pausing.load(ordering: .acquiring) }

    /// Worker `queue` returned from its run.
    func finish(_ queue: Int) { state.withLock { $0.finished[queue] = true } }

    /// Parks worker `queue` until the main thread resumes the run: true to go
    /// on (the new connection is set up), false when the run was abandoned
    /// (or no verdict came within the park limit).
    func park(_ queue: Int) -> Bool {
        let generation = state.withLock { s in
            s.parked[queue] = true
            return s.generation
        }
        let deadline = monotonicNanoseconds() + parkLimitNanoseconds
        while monotonicNanoseconds() < deadline {
            let verdict: Bool? = state.withLock { s in s.generation != generation ? !s.abandoned : nil }
            if let verdict { return verdict }
            Self.sleepMilliseconds(1)
        }
        return false
    }

    // MARK: main-thread side

    /// Every worker returned.
    var allFinished: Bool { state.withLock { $0.finished.allSatisfy { $0 } } }

    /// Asks every worker to park (`wake` each so none sleeps through it);
    /// true once all parked or finished within `timeoutSeconds`.
    func pauseAll(timeoutSeconds: Double, wake: () -> Void) -> Bool {
        pausing.store(true, ordering: .releasing)
        wake()
        let deadline = monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        while monotonicNanoseconds() < deadline {
            if state.withLock({ s in zip(s.parked, s.finished).allSatisfy { $0 || $1 } }) { return true }
            Self.sleepMilliseconds(1)
        }
        return false
    }

    /// Lets the parked workers go on (`abandon`: they stop, their requests counted stuck).
    func resumeAll(abandon: Bool) {
        pausing.store(false, ordering: .releasing)
        state.withLock { s in
            s.abandoned = abandon
            s.generation += 1
            for i in s.parked.indices { s.parked[i] = false }
        }
    }

    static func sleepMilliseconds(_ ms: Int) {
        var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
        nanosleep(&ts, nil)
    }
}
