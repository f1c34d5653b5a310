import CVireoSys

/// `sigtimedwait(2)` for SIGINT, SIGTERM, SIGHUP and SIGUSR1 (which the caller has blocked),
/// up to `timeoutMilliseconds` (negative: for ever). Returns the signal, 0 on timeout.
public func waitForSignal(timeoutMilliseconds: Int) -> Int32 {
    vireo_wait_signal(timeoutMilliseconds)
}

/// The process's allocation count when the counter (deploy/bench/malloc-count.c) is
/// preloaded; nil when it is not.
public func processAllocationCount() -> UInt64? {
    var n: UInt64 = 0
    return vireo_process_allocations(&n) != 0 ? n : nil
}

/// The calling thread's own allocations under the same counter; nil when it is not preloaded.
public func threadAllocationCount() -> UInt64? {
    var n: UInt64 = 0
    return vireo_thread_allocations(&n) != 0 ? n : nil
}
