import Virtio

/// A `DeviceQueue` the vhost-user runtime can drive: the layout-specific
/// dirty-log writes of the ring itself (vhost-user.rst "Migration") and
/// inflight bookkeeping ("Inflight I/O tracking").
protocol VringQueue: DeviceQueue {
    /// After a pop: log the device's event write (split: avail_event with
    /// EVENT_IDX; packed: the device event suppression structure in DESC mode).
    func logAvailEvent(_ ring: VhostUserVring)
    /// After `pushUsed` of `token`: log the used element and index writes,
    /// and finish the inflight record of its head (`token.id`).
    func usedPublished(_ ring: VhostUserVring, token: UsedToken)
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
    func usedPublished(_ ring: VhostUserVring, token: UsedToken) {
        if let log = ring.log, let gpa = ring.logUsedGPA {
            // §2.7.8: used ring element `slot`, then used.idx.
            let slot = UInt64((usedIdx &- 1) & (size &- 1))
            log.logWrite(gpa: gpa &+ 4 &+ 8 &* slot, length: 8)
            log.logWrite(gpa: gpa &+ 2, length: 2)
        }
        ring.inflight?.postPut(head: token.id, usedIndex: usedIdx)
    }
}

extension PackedQueue: VringQueue {
    /// §2.8.10: in DESC mode each pop rewrites the device event suppression
    /// structure (4 bytes in the device area).
    @inline(__always)
    func logAvailEvent(_ ring: VhostUserVring) {
        if eventIdx, kickNotificationsEnabled, let log = ring.log, let gpa = ring.logPackedGPAs?.deviceArea {
            log.logWrite(gpa: gpa, length: UInt64(RingLayout.packedEventBytes))
        }
    }

    /// §2.8.6: the used descriptor went into the slot the chain's first
    /// descriptor had, `descriptorCount` slots before the new used position;
    /// the device wrote its len, id and flags (bytes 8-15). Packed rings are
    /// not tracked by INFLIGHT_SHMFD (see `VhostUserVring`).
    @inline(__always)
    func usedPublished(_ ring: VhostUserVring, token: UsedToken) {
        guard let log = ring.log, let gpa = ring.logPackedGPAs?.descriptors else { return }
        var slot = Int(nextUsed) - Int(token.descriptorCount)
        if slot < 0 { slot += Int(size) }
        log.logWrite(gpa: gpa &+ UInt64(slot) &* UInt64(RingLayout.descriptorSize) &+ 8, length: 8)
    }
}
