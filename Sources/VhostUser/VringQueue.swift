import Virtio

/// A `DeviceQueue` the vhost-user runtime can drive: the layout-specific
/// dirty-log writes of the ring itself (vhost-user.rst "Migration") and
/// inflight bookkeeping ("Inflight I/O tracking").
protocol VringQueue: DeviceQueue {
    /// After a pop: log the avail_event write (split with EVENT_IDX).
    func logAvailEvent(_ ring: VhostUserVring)
    /// After `pushUsed` of `head`: log the used element and index writes,
    /// and finish the inflight record.
    func usedPublished(_ ring: VhostUserVring, head: UInt16)
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
    func usedPublished(_ ring: VhostUserVring, head: UInt16) {
        if let log = ring.log, let gpa = ring.logUsedGPA {
            // §2.7.8: used ring element `slot`, then used.idx.
            let slot = UInt64((usedIdx &- 1) & (size &- 1))
            log.logWrite(gpa: gpa &+ 4 &+ 8 &* slot, length: 8)
            log.logWrite(gpa: gpa &+ 2, length: 2)
        }
        ring.inflight?.postPut(head: head, usedIndex: usedIdx)
    }
}

extension PackedQueue: VringQueue {
    // Packed rings are refused with LOG_ALL (SET_FEATURES) and not tracked
    // by INFLIGHT_SHMFD: nothing to do.
    @inline(__always) func logAvailEvent(_ ring: VhostUserVring) {}
    @inline(__always) func usedPublished(_ ring: VhostUserVring, head: UInt16) {}
}
