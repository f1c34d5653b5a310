import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Runs control requests on the thread that owns the daemon's state (the target's control
/// thread), so the state needs no lock: the control server's thread posts a job and waits;
/// the owner's loop polls `wakeFD` and calls `runPending()`. Never call `run` on the owner's
/// own thread (it would wait for itself until the timeout); the owner calls `close()` when
/// it stops.
public final class ControlMailbox: Sendable {
    /// Waiting jobs: each runs on the owner, or is cancelled when the mailbox closes.
    private let jobs = Locked<(open: Bool, waiting: [Job])>((true, []))
    private let wake: EventFD

    private struct Job: Sendable {
        let run: @Sendable () -> Void
        let cancel: @Sendable () -> Void
    }

    public init() throws(SystemError) { wake = try EventFD() }

    /// Readable when jobs wait: the owner polls it.
    public var wakeFD: Int32 { wake.rawValue }

    /// Owner side: runs every waiting job, in order.
    public func runPending() {
        _ = wake.drain()
        let pending = jobs.withLock { j -> [Job] in
            defer { j.waiting.removeAll() }
            return j.waiting
        }
        for job in pending { job.run() }
    }

    /// The owner is stopping: every waiting job, and every later one, fails at once with
    /// `.unavailable` instead of waiting for a loop that will not run it.
    public func close() {
        let pending = jobs.withLock { j -> [Job] in
            j.open = false
            defer { j.waiting.removeAll() }
            return j.waiting
        }
        for job in pending { job.cancel() }
    }

    /// Caller side: runs `body` on the owner's thread and returns what it returned. When the
    /// owner does not get to it within `timeoutMilliseconds` (it is stopping or stuck), throws
    /// `.unavailable`; the job may still run later.
    public func run<T: Sendable>(timeoutMilliseconds: Int32 = 30_000,
                                 _ body: @escaping @Sendable () -> Result<T, ControlError>) throws(ControlError) -> T {
        let pending: Pending<T>
        do { pending = try Pending<T>() } catch { throw .unavailable("control: \(error)") }
        let queued = jobs.withLock { j -> Bool in
            guard j.open else { return false }
            j.waiting.append(Job(run: { pending.finish(body()) },
                                 cancel: { pending.finish(.failure(.unavailable("the daemon is stopping"))) }))
            return true
        }
        guard queued else { throw .unavailable("the daemon is stopping") }
        wake.signal()
        var p = pollfd(fd: pending.done.rawValue, events: Int16(POLLIN), revents: 0)
        let deadline = monotonicNanoseconds() &+ UInt64(max(timeoutMilliseconds, 0)) * 1_000_000
        while true {
            if let r = pending.result { return try r.get() }
            let now = monotonicNanoseconds()
            guard now < deadline else {
                throw .unavailable("the daemon did not answer within \(timeoutMilliseconds / 1000) s; the change may still be made")
            }
            _ = Glibc.poll(&p, 1, Int32(clamping: (deadline - now) / 1_000_000 + 1))
        }
    }

    /// One job's result and the eventfd that says it is there (kept alive by the job).
    private final class Pending<T: Sendable>: Sendable {
        let done: EventFD
        private let value = Locked<Result<T, ControlError>?>(nil)
        init() throws(SystemError) { done = try EventFD() }
        var result: Result<T, ControlError>? { value.withLock { $0 } }
        func finish(_ r: Result<T, ControlError>) {
            value.withLock { $0 = r }
            done.signal()
        }
    }
}
