import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Runs control requests on the thread that owns the daemon's state (the target's control
/// thread), so the state needs no lock: the control server's thread posts a job and waits;
/// the owner's loop polls `wakeFD` and calls `runPending()`.
public final class ControlMailbox: Sendable {
    private let jobs = Locked<[@Sendable () -> Void]>([])
    private let wake: EventFD

    public init() throws(SystemError) { wake = try EventFD() }

    /// Readable when jobs wait: the owner polls it.
    public var wakeFD: Int32 { wake.rawValue }

    /// Owner side: runs every waiting job, in order.
    public func runPending() {
        _ = wake.drain()
        let pending = jobs.withLock { j -> [@Sendable () -> Void] in
            defer { j.removeAll() }
            return j
        }
        for job in pending { job() }
    }

    /// Caller side: runs `body` on the owner's thread and returns what it returned. When the
    /// owner does not get to it within `timeoutMilliseconds` (it is stopping or stuck), throws
    /// `.unavailable`; the job may still run later.
    public func run<T: Sendable>(timeoutMilliseconds: Int32 = 30_000,
                                 _ body: @escaping @Sendable () -> Result<T, ControlError>) throws(ControlError) -> T {
        let pending: Pending<T>
        do { pending = try Pending<T>() } catch { throw .unavailable("control: \(error)") }
        jobs.withLock { $0.append { pending.finish(body()) } }
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
