import Synchronization

/// What one data-path thread spends besides useful work: the calls that cost a
/// system call or a wake-up on soft-RoCE, counted where they are made. The
/// stats file divides nothing; the benchmark divides the deltas by the I/Os
/// (or frames) of a job, which is how `docs/bench/report.md` gets its
/// "system calls per I/O" and "wake-ups per I/O".
///
/// One writer (the owning thread): a bump is a relaxed load and store, no
/// read-modify-write, no lock. Any thread may read (a live, approximate view).
/// Every instance joins a process-wide registry, so `processTotals()` sums
/// the live ones and those already gone.
public final class DataPathCosts: Sendable {
    /// What is counted. The doc of each says whether it is a system call on
    /// soft-RoCE (rdma_rxe, where posting a send and arming a CQ enter the kernel).
    public enum Event: Int, CaseIterable, Sendable {
        /// `ibv_post_send` calls (rxe: a `write` to the uverbs fd; system call).
        case sendPosts
        /// `ibv_post_recv` calls (rxe and most RNICs: user space only).
        case receivePosts
        /// `ibv_req_notify_cq` calls, arming a CQ before a sleep (rxe: system call).
        case completionArms
        /// `ibv_get_cq_event` reads of a completion channel after a sleep (system call).
        case channelReads
        /// eventfd writes: virtqueue calls to a guest, wakes of another thread (system call).
        case eventfdWrites
        /// eventfd reads: kicks and wakes drained after a sleep (system call).
        case eventfdReads
        /// `io_uring_enter` calls that submitted storage work (system call).
        case uringEnters
        /// Sleeps in `poll` (system call); each is one thread wake-up.
        case sleeps
        /// CQ polls that found nothing (user space; the price of polling).
        case emptyPolls

        /// The stats file's name for it (`vireo_datapath_<name>_total`).
        public var name: String {
            switch self {
            case .sendPosts: "send_posts"
            case .receivePosts: "receive_posts"
            case .completionArms: "completion_arms"
            case .channelReads: "channel_reads"
            case .eventfdWrites: "eventfd_writes"
            case .eventfdReads: "eventfd_reads"
            case .uringEnters: "uring_enters"
            case .sleeps: "sleeps"
            case .emptyPolls: "empty_polls"
            }
        }

        /// Whether it enters the kernel on soft-RoCE.
        public var isSystemCall: Bool { self != .receivePosts && self != .emptyPolls }

        /// What the stats file's HELP line says.
        public var help: String {
            switch self {
            case .sendPosts: "ibv_post_send calls by data-path threads (a system call on soft-RoCE)."
            case .receivePosts: "ibv_post_recv calls by data-path threads (user space on soft-RoCE)."
            case .completionArms: "ibv_req_notify_cq calls before a data-path thread sleeps (a system call on soft-RoCE)."
            case .channelReads: "Completion-channel event reads after a data-path thread woke (system calls)."
            case .eventfdWrites: "eventfd writes by data-path threads: virtqueue calls, wakes of other threads (system calls)."
            case .eventfdReads: "eventfd reads by data-path threads: kicks and wakes drained after a sleep (system calls)."
            case .uringEnters: "io_uring_enter calls that submitted storage operations (system calls)."
            case .sleeps: "Times a data-path thread slept in poll (a system call, then a wake-up)."
            case .emptyPolls: "Completion-queue polls that found nothing (user space; what polling costs)."
            }
        }
    }

    private let sendPosts = Atomic<UInt64>(0)
    private let receivePosts = Atomic<UInt64>(0)
    private let completionArms = Atomic<UInt64>(0)
    private let channelReads = Atomic<UInt64>(0)
    private let eventfdWrites = Atomic<UInt64>(0)
    private let eventfdReads = Atomic<UInt64>(0)
    private let uringEnters = Atomic<UInt64>(0)
    private let sleeps = Atomic<UInt64>(0)
    private let emptyPolls = Atomic<UInt64>(0)

    public init() {
        Self.registry.withLock { $0.live.append(Weak(self)) }
    }

    deinit {
        let mine = snapshot()
        Self.registry.withLock { r in
            for e in Event.allCases { r.retired[e.rawValue] &+= mine[e.rawValue] }
            r.live.removeAll { $0.value == nil }
        }
    }

    /// Counts `n` of `event` (owning thread only).
    @inline(__always)
    public func count(_ event: Event, _ n: UInt64 = 1) {
        switch event {
        case .sendPosts: Self.bump(sendPosts, n)
        case .receivePosts: Self.bump(receivePosts, n)
        case .completionArms: Self.bump(completionArms, n)
        case .channelReads: Self.bump(channelReads, n)
        case .eventfdWrites: Self.bump(eventfdWrites, n)
        case .eventfdReads: Self.bump(eventfdReads, n)
        case .uringEnters: Self.bump(uringEnters, n)
        case .sleeps: Self.bump(sleeps, n)
        case .emptyPolls: Self.bump(emptyPolls, n)
        }
    }

    /// This instance's count of `event`.
    public func value(_ event: Event) -> UInt64 {
        switch event {
        case .sendPosts: sendPosts.load(ordering: .relaxed)
        case .receivePosts: receivePosts.load(ordering: .relaxed)
        case .completionArms: completionArms.load(ordering: .relaxed)
        case .channelReads: channelReads.load(ordering: .relaxed)
        case .eventfdWrites: eventfdWrites.load(ordering: .relaxed)
        case .eventfdReads: eventfdReads.load(ordering: .relaxed)
        case .uringEnters: uringEnters.load(ordering: .relaxed)
        case .sleeps: sleeps.load(ordering: .relaxed)
        case .emptyPolls: emptyPolls.load(ordering: .relaxed)
        }
    }

    /// Every count, indexed by `Event.rawValue`.
    public func snapshot() -> [UInt64] { Event.allCases.map { value($0) } }

    /// One writer: a plain load and store (no locked instruction on the hot path).
    @inline(__always)
    private static func bump(_ a: borrowing Atomic<UInt64>, _ n: UInt64) {
        a.store(a.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    // MARK: the process's totals

    private struct Weak: @unchecked Sendable {
        // SAFETY: only touched under the registry's lock.
        weak var value: DataPathCosts?
        init(_ v: DataPathCosts) { value = v }
    }

    private struct Registry: Sendable {
        var live: [Weak] = []
        var retired = [UInt64](repeating: 0, count: Event.allCases.count)
    }

    private static let registry = Locked(Registry())

    /// Every data-path thread's counts in this process, live and gone, indexed by `Event.rawValue`.
    public static func processTotals() -> [UInt64] {
        let (live, retired) = registry.withLock { r in (r.live.compactMap(\.value), r.retired) }
        var total = retired
        for c in live {
            for e in Event.allCases { total[e.rawValue] &+= c.value(e) }
        }
        return total
    }
}
