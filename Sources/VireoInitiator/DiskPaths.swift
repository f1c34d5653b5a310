import Synchronization
import VireoFabric
import VireoSys

/// A disk's paths to its export (one per gateway of the group) and which one carries I/O.
///
/// Every queue of the disk connects over the active path, so one gateway at a time writes
/// the image (its RBD exclusive lock moves with the path, docs/ceph.md). A connect that fails
/// on the active path makes the next one active (in the configured order, wrapping), and the
/// supervisor moves queues still connected over another path to the active one. Shared by the
/// disk's supervisor thread and the stats; a disk with one path never switches.
final class DiskPaths: Sendable {
    /// What a path is doing now.
    enum State: String, Sendable {
        /// I/O goes over it.
        case active
        /// Not in use; last known to connect (or never tried).
        case standby
        /// The last connect over it failed (`lastError` says why).
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

    /// A connect over path `index` failed with `error`: when it is the active path and there
    /// is another, the next one becomes active. Returns the new active path when it changed.
    @discardableResult
    func failed(_ index: Int, _ error: String) -> Int? {
        let n = addresses.count
        var moved: Int?
        if n > 1, activeIndex.compareExchange(expected: index, desired: (index + 1) % n, ordering: .acquiringAndReleasing).exchanged {
            moved = (index + 1) % n
            switches.add(1, ordering: .relaxed)
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
