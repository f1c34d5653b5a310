import Virtio

/// A `DeviceQueue` the vhost-user runtime can drive: the layout-specific
/// dirty-log writes of the ring itself (vhost-user.rst "Migration") and
/// inflight bookkeeping ("Inflight I/O tracking").
protocol VringQueue: DeviceQueue {
    /// After a pop: log the device's event write (split: avail_event with
    /// EVENT_IDX; packed: the device event suppression structure in DESC mode).
    func logAvailEvent(_ ring: VhostUserVring)
    /// After a pop, before the request goes out: its inflight record.
    func popped(_ ring: VhostUserVring, _ req: VhostUserQueueRequest)
    /// Before `pushUsed` of the request's token: the inflight record of the
    /// completion in progress.
    func willPublishUsed(_ ring: VhostUserVring, _ req: VhostUserQueueRequest)
    /// After `pushUsed`: log the used element and index writes, and finish
    /// the request's inflight record.
    func usedPublished(_ ring: VhostUserVring, _ req: VhostUserQueueRequest)
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
    func popped(_ ring: VhostUserVring, _ req: VhostUserQueueRequest) {
        ring.inflight?.markPopped(head: req.chain.head, counter: ring.inflightCounter)
    }

    @inline(__always)
    func willPublishUsed(_ ring: VhostUserVring, _ req: VhostUserQueueRequest) {
        ring.inflight?.prePut(head: req.chain.head)
    }

    @inline(__always)
    func usedPublished(_ ring: VhostUserVring, _ req: VhostUserQueueRequest) {
        if let log = ring.log, let gpa = ring.logUsedGPA {
            // §2.7.8: used ring element `slot`, then used.idx.
            let slot = UInt64((usedIdx &- 1) & (size &- 1))
            log.logWrite(gpa: gpa &+ 4 &+ 8 &* slot, length: 8)
            log.logWrite(gpa: gpa &+ 2, length: 2)
        }
        ring.inflight?.postPut(head: req.chain.head, usedIndex: usedIdx)
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

    /// Copies the chain's descriptors into the inflight record: used
    /// descriptors may overwrite their ring slots before it completes.
    @inline(__always)
    func popped(_ ring: VhostUserVring, _ req: VhostUserQueueRequest) {
        req.inflightEntry = ring.packedInflight?.markPopped(
            queue: self, descriptorCount: req.chain.token.descriptorCount, counter: ring.inflightCounter) ?? InflightPackedQueue.none
    }

    /// The used position after this completion (§2.8.6: it advances by the
    /// chain's descriptor count, toggling the wrap counter past the end).
    @inline(__always)
    func willPublishUsed(_ ring: VhostUserVring, _ req: VhostUserQueueRequest) {
        // A broken ring publishes nothing (addUsed returns at once): the record stays as it is.
        guard let t = ring.packedInflight, req.inflightEntry != InflightPackedQueue.none, !isBroken else { return }
        t.prePut(entry: req.inflightEntry, usedStateAfter: PackedQueue.position(
            UInt16(truncatingIfNeeded: vringBase >> 16), advancedBy: Int(req.chain.token.descriptorCount), size: size))
    }

    /// §2.8.6: the used descriptor went into the slot the chain's first
    /// descriptor had, `descriptorCount` slots before the new used position;
    /// the device wrote its len, id and flags (bytes 8-15).
    @inline(__always)
    func usedPublished(_ ring: VhostUserVring, _ req: VhostUserQueueRequest) {
        if let log = ring.log, let gpa = ring.logPackedGPAs?.descriptors {
            var slot = Int(nextUsed) - Int(req.chain.token.descriptorCount)
            if slot < 0 { slot += Int(size) }
            log.logWrite(gpa: gpa &+ UInt64(slot) &* UInt64(RingLayout.descriptorSize) &+ 8, length: 8)
        }
        if req.inflightEntry != InflightPackedQueue.none, !isBroken {
            ring.packedInflight?.postPut(entry: req.inflightEntry)
            req.inflightEntry = InflightPackedQueue.none
        }
    }
}
