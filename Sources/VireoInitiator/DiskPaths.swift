import Synchronization
import VireoFabric
import VireoSys

/// A disk's paths to its export (one per gateway of the group) and which one carries I/O.
///
/// Every queue of the disk connects over the active path, so one gateway at a time writes
/// the image (its RBD exclusive lock moves with the path, docs/ceph.md). The other paths are
/// probed (`PathProber`): a standby path is one whose gateway last answered that it would
/// admit the disk. A connect that fails on the active path makes the next standby path active
/// (in the configured order, wrapping; the next path when none is known good), and the
/// supervisor moves queues still connected over another path to the active one. Shared by the
/// disk's supervisor and prober threads and the stats; a disk with one path never switches.
final class DiskPaths: Sendable {
    /// What a path is doing now.
    enum State: String, Sendable {
        /// I/O goes over it.
        case active
        /// Not in use; its last connect or probe succeeded (or it was never tried).
        case standby
        /// The last connect or probe over it failed (`lastError` says why).
        case failed
    }

    struct Path: Sendable {
        let address: FabricAddress
        var state: State
        var lastError: String?
    }

    let addresses: [FabricAddress]
    private let activeIndex = Atomic<Int>(0)
    private let paths: Locked<[Path]>
    /// Times the active path changed.
    let switches = Atomic<UInt64>(0)

    init(_ addresses: [FabricAddress]) {
        precondition(!addresses.isEmpty, "a disk has at least one path")
        self.addresses = addresses
        paths = Locked(addresses.enumerated().map { Path(address: $1, state: $0 == 0 ? .active : .standby, lastError: nil) })
    }

    /// The path I/O goes over now.
    var active: Int { activeIndex.load(ordering: .acquiring) }

    /// A connect over path `index` succeeded.
    func connected(_ index: Int) {
        paths.withLock { p in
            p[index].lastError = nil
            p[index].state = index == active ? .active : .standby
        }
    }

    /// A probe of path `index` (not the active one) answered: `error` nil when its gateway
    /// would admit the disk. Returns the state the path had before, when it changed.
    @discardableResult
    func probed(_ index: Int, error: String?) -> State? {
        paths.withLock { p -> State? in
            guard index != active, p[index].state != .active else { return nil }
            let before = p[index].state
            p[index].state = error == nil ? .standby : .failed
            p[index].lastError = error
            return before == p[index].state ? nil : before
        }
    }

    /// A connect over path `index` failed with `error`: when it is the active path and there
    /// is another, the next standby one becomes active (the next one when no other is known
    /// good). Returns the new active path when it changed.
    @discardableResult
    func failed(_ index: Int, _ error: String) -> Int? {
        let n = addresses.count
        var moved: Int?
        if n > 1 {
            let next = paths.withLock { p in
                (1..<n).lazy.map { (index + $0) % n }.first { p[$0].state == .standby } ?? (index + 1) % n
            }
            if activeIndex.compareExchange(expected: index, desired: next, ordering: .acquiringAndReleasing).exchanged {
                moved = next
                switches.add(1, ordering: .relaxed)
            }
        }
        let now = active
        paths.withLock { p in
            p[index].state = .failed
            p[index].lastError = error
            if now != index { p[now].state = .active }
        }
        return moved
    }

    /// Each path's state and last error, in order.
    func snapshot() -> [Path] { paths.withLock { $0 } }
}
