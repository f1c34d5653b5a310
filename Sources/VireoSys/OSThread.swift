import CVireoSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A joinable OS thread: queue workers run on these, never on Swift tasks,
/// so a spinning poll loop cannot starve the cooperative pool.
public final class OSThread: @unchecked Sendable {
    private final class Box {
        let body: () -> Void
        let name: String
        init(_ b: @escaping () -> Void, name: String) { body = b; self.name = name }
    }
    private var handle: pthread_t
    private var joined = false
    /// The name given at start (at most 15 bytes reach the kernel).
    public let name: String

    /// Starts `body` on a new thread named `name`.
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        self.name = name
        let box = Unmanaged.passRetained(Box(body, name: name)).toOpaque()
        var tid = pthread_t()
        do {
            try zeroOrErrno("pthread_create") {
                pthread_create(&tid, nil, { arg in
                    let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
                    _ = vireo_pthread_setname_self(box.name)
                    box.body()
                    return nil
                }, box)
            }
        } catch {
            Unmanaged<Box>.fromOpaque(box).release()
            throw error
        }
        handle = tid
    }

    /// Waits for the thread to finish. Idempotent.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    deinit {
        if !joined { pthread_detach(handle) }
    }
}

/// The calling thread's CPU time in nanoseconds (CLOCK_THREAD_CPUTIME_ID).
public func threadCPUTimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC).
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Process CPU time (user + system) in nanoseconds.
public func processCPUTimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
