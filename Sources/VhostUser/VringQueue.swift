import Virtio

/// A `DeviceQueue` the vhost-user runtime can drive: the layout-specific
/// dirty-log writes of the ring itself (vhost-user.rst "Migration").
protocol VringQueue: DeviceQueue {
    /// After a pop: log the avail_event write (split with EVENT_IDX).
    func logAvailEvent(_ ring: VhostUserVring)
    /// After `pushUsed`: log the used element and index writes.
    func logUsedElement(_ ring: VhostUserVring)
}

extension SplitQueue: VringQueue {
    @inline(__always)
    func logAvailEvent(_ ring: VhostUserVring) {
        // §2.7.10: avail_event sits after the used ring's `size` elements.
        if ring.eventIdx, let log = ring.log, let gpa = ring.logUsedGPA {
            log.logWrite(gpa: gpa &+ 4 &+ 8 &* UInt64(size), length: 2)
        }
    }

    @inline(__always)
    func logUsedElement(_ ring: VhostUserVring) {
        guard let log = ring.log, let gpa = ring.logUsedGPA else { return }
        let slot = UInt64((usedIdx &- 1) & (size &- 1))
        log.logWrite(gpa: gpa &+ 4 &+ 8 &* slot, length: 8)
        log.logWrite(gpa: gpa &+ 2, length: 2)
    }
}

extension PackedQueue: VringQueue {
    /// Packed rings are refused with LOG_ALL (SET_FEATURES): nothing to log here.
    @inline(__always) func logAvailEvent(_ ring: VhostUserVring) {}
    @inline(__always) func logUsedElement(_ ring: VhostUserVring) {}
}
