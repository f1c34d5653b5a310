/// Per-queue counters, updated on the hot path instead of logging.
///
/// Plain integers owned by the queue's worker thread; read them from that
/// thread (or after it stopped) for statistics.
public struct QueueCounters: Equatable, Sendable {
    /// Chains returned by `popAvail`.
    public var popped: UInt64 = 0
    /// Used entries written.
    public var completed: UInt64 = 0
    /// Requests rejected as `.badRequest`.
    public var badRequests: UInt64 = 0
    /// Times the queue was declared broken (0 or 1 until reset).
    public var broken: UInt64 = 0
    /// `needsNotification()` calls that said "notify".
    public var notificationsSent: UInt64 = 0
    /// `needsNotification()` calls that suppressed the notification.
    public var notificationsSuppressed: UInt64 = 0

    public init() {}
}
