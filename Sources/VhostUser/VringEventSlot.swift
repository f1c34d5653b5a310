import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A ring's call or err eventfd, replaceable by the control thread while the
/// owning worker keeps signalling it: SET_VRING_CALL / SET_VRING_ERR swap the
/// fd without pausing any worker (QEMU sends SET_VRING_CALL on every
/// interrupt mask / unmask).
///
/// The worker never holds a reference to the `SharedEventFD`, only its raw
/// fd number, loaded from `fd` for the duration of one `signal()`. The
/// control thread keeps the owning reference and releases (closes) the old
/// one only after the per-slot handshake below proves no `signal()` can
/// still be writing to it.
///
/// Ordering (all four accesses are sequentially consistent, so they sit in
/// one total order S):
///
/// ```
///   worker signal():                      control replace(new):
///   W1  seq += 1        (now odd)         W2  fd = new
///   R1  f = fd                            R2  s = seq
///       write(f, 1)                           if s is odd: wait until seq != s
///   W3  seq += 1        (even, release)       close(old)
/// ```
///
/// If R1 read the old fd, R1 precedes W2 in S, hence W1 precedes R2, so R2
/// reads that period's odd value (or a later one) and the control thread
/// waits for W3, which is a release that the acquire load of the wait
/// synchronises with: the write happens-before the close. If R2 reads an
/// even value, every period whose W1 comes later in `seq`'s modification
/// order has W1, and therefore R1, after R2 and W2 in S, so it loads the new
/// fd. A period we wait for can only end, so the wait is bounded by one
/// eventfd write. Hence: once `replace` returns, no signal goes to the old
/// fd, and closing it cannot hit a recycled descriptor number.
///
/// Exactly one thread (the ring's worker) calls `signal()`; `replace` is
/// control-thread only. Hot path: two atomic RMWs and a load around the
/// write(2) that a call costs anyway; no lock, no allocation.
final class VringEventSlot: @unchecked Sendable {
    // SAFETY (Sendable): `owner` is touched by the control thread only; the
    // worker uses the atomics alone; `replaceCount` may be read anywhere.

    private let fd = Atomic<Int32>(-1)
    private let seq = Atomic<UInt64>(0)
    /// The owning reference (control thread only).
    private var owner: SharedEventFD?
    /// Replacements done (tests and statistics): atomic, since it is read from
    /// other threads (a test reads it, then the session's teardown replaces).
    private let replaceCount = Atomic<UInt64>(0)

    /// Replacements done so far (any thread; relaxed).
    var replacements: UInt64 { replaceCount.load(ordering: .relaxed) }

    init() {}

    /// The current eventfd (control thread).
    var current: SharedEventFD? { owner }

    /// (Worker) Signals the current fd; false when there is none.
    @inline(__always)
    @discardableResult
    func signal() -> Bool {
        seq.wrappingAdd(1, ordering: .sequentiallyConsistent)
        let f = fd.load(ordering: .sequentiallyConsistent)
        if f >= 0 {
            var one: UInt64 = 1
            // SAFETY: `f` stays open until this period ends (see the type
            // comment); `one` is the 8-byte local eventfd write takes. EAGAIN
            // (saturated counter) already means "signalled".
            _ = withUnsafeBytes(of: &one) { write(f, $0.baseAddress, 8) }
        }
        seq.wrappingAdd(1, ordering: .releasing)
        return f >= 0
    }

    /// (Control) Installs `new` (nil: no fd) and releases the old one once
    /// no `signal()` can be using it.
    func replace(_ new: SharedEventFD?) {
        let old = owner
        owner = new
        replaceCount.wrappingAdd(1, ordering: .relaxed)
        fd.store(new?.rawValue ?? -1, ordering: .sequentiallyConsistent)
        let s = seq.load(ordering: .sequentiallyConsistent)
        if s & 1 == 1 {
            while seq.load(ordering: .acquiring) == s { sched_yield() }
        }
        withExtendedLifetime(old) {}
    }
}
