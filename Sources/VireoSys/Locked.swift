#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value behind a `pthread_mutex_t`: the one lock Vireo uses (in place of
/// `Synchronization.Mutex`), so ThreadSanitizer sees every critical section.
///
/// `Synchronization.Mutex` on Linux is a futex word driven by the
/// uninstrumented standard library: TSan sees neither its acquire nor its
/// release, and reports every access inside `withLock` as a race (confirmed
/// with a two-thread counter built with `-sanitize=thread`; `pthread_mutex`
/// and `NSLock` are clean). TSan intercepts `pthread_mutex_lock`/`unlock`,
/// so a lock built on them is seen (lock-order inversions included).
///
/// Same shape as `Mutex`: non-copyable, `Sendable` for any value (it only
/// moves in and out through `sending`), `withLock` runs its body with the
/// value `inout`. The mutex and the value are allocated once at init (their
/// addresses must not move while locked); `withLock` allocates nothing.
/// Not recursive: locking it again from inside `withLock` deadlocks.
public struct Locked<Value: ~Copyable>: ~Copyable {
    // SAFETY: `mutex` and `value` are heap cells owned by this instance
    // (allocated in init, freed in deinit) at fixed addresses, as
    // `pthread_mutex_t` requires. `value` is read or written only inside
    // `withLock`, between `pthread_mutex_lock` and `pthread_mutex_unlock` on
    // `mutex`, so no two threads touch it at once; hence `@unchecked Sendable`.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let value: UnsafeMutablePointer<Value>

    /// A lock holding `initialValue`.
    public init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        // Nobody can hold the lock: deinit runs with the last (borrowed) use done.
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with the value while holding the lock; returns its result.
    /// Keep `body` short: no blocking calls, no waiting on other locks.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: \(rc)")
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}

extension Locked: @unchecked Sendable where Value: ~Copyable {}
