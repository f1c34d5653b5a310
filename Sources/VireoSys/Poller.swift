#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fixed set of descriptors waited on with `poll(2)`, allocated once.
///
/// Used by queue workers to sleep on "kick eventfd or completion channel"
/// after their spin budget runs out; no allocation per wait.
public final class Poller: @unchecked Sendable {
    private let fds: UnsafeMutablePointer<pollfd>
    /// How many descriptors are registered.
    public private(set) var count = 0
    /// Capacity fixed at creation.
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        fds = .allocate(capacity: capacity)
    }

    deinit { fds.deallocate() }

    /// Registers `fd` for readability; returns its slot.
    @discardableResult
    public func add(_ fd: Int32, events: Int16 = Int16(POLLIN)) -> Int {
        precondition(count < capacity, "Poller capacity exceeded")
        fds[count] = pollfd(fd: fd, events: events, revents: 0)
        count += 1
        return count - 1
    }

    /// Replaces the descriptor in `slot` (-1 disables the slot).
    public func set(_ slot: Int, fd: Int32) {
        precondition(slot >= 0 && slot < count)
        fds[slot].fd = fd
    }

    /// Forgets every descriptor.
    public func removeAll() { count = 0 }

    /// Waits up to `timeoutMilliseconds` (-1: forever). Returns how many slots are ready.
    @discardableResult
    public func wait(timeoutMilliseconds: Int32) throws(SystemError) -> Int {
        for i in 0..<count { fds[i].revents = 0 }
        let n = try syscallRetrying("poll") { poll(fds, nfds_t(count), timeoutMilliseconds) }
        return Int(n)
    }

    /// Whether `slot` was readable (or hung up / errored) after the last `wait`.
    public func isReady(_ slot: Int) -> Bool {
        precondition(slot >= 0 && slot < count)
        return fds[slot].revents != 0
    }

    /// The raw `revents` of `slot` after the last `wait`.
    public func revents(_ slot: Int) -> Int16 { fds[slot].revents }
}
