// Split ring notification suppression (virtio 1.x §2.7.7 used-buffer
// notifications, §2.7.10 available-buffer notifications).

extension SplitQueue {
    /// Writes `avail_event` (used->ring[size]) = lastAvailIdx: the driver
    /// kicks when it makes the entry at that index available (§2.7.10).
    func writeAvailEvent() {
        // SAFETY: avail_event sits at offset 4 + 8*size, inside the checked used ring, 2-aligned.
        guestStoreRelaxed16(used + 4 + 8 * Int(size), lastAvailIdx)
    }

    /// Whether the driver must be notified of used buffers published since
    /// the last call (virtio 1.x §2.7.7). Call after `publishUsed`.
    public func needsNotification() -> Bool {
        guard brokenReason == nil else { return false }
        // Full fence (StoreLoad): our store of used.idx (release, in
        // publishUsed) must be globally visible before we load used_event /
        // avail.flags. Release/acquire does not order a store before a later
        // load, so without it we could read a stale used_event while the
        // driver, which writes used_event then fences then reads used.idx,
        // reads our stale used.idx: both skip, the driver sleeps on a buffer
        // that is already used (lost interrupt). Mirrors the driver's
        // virtio_mb() in virtqueue_enable_cb.
        fullMemoryFence()
        let notify: Bool
        if eventIdx {
            // virtio 1.x §2.7.7.2 with VIRTIO_F_EVENT_IDX: notify iff used_event
            // lies in [old, new), i.e. vring_need_event(used_event, new, old).
            let old = signalledUsed
            let new = usedIdx
            let valid = signalledUsedValid
            signalledUsed = new
            signalledUsedValid = true
            // SAFETY: used_event at offset 4 + 2*size inside the checked avail ring.
            let event = guestLoadRelaxed16(avail + 4 + 2 * Int(size))
            notify = !valid || SplitQueue.needEvent(event: event, new: new, old: old)
        } else {
            // virtio 1.x §2.7.7.2 without EVENT_IDX: honour VRING_AVAIL_F_NO_INTERRUPT.
            // SAFETY: avail.flags at offset 0 of the checked avail ring.
            notify = guestLoadRelaxed16(avail) & RingLayout.availFlagNoInterrupt == 0
        }
        if notify { counters.notificationsSent += 1 } else { counters.notificationsSuppressed += 1 }
        return notify
    }

    /// `vring_need_event` (virtio 1.x §2.7.7.2): true iff `event` is in the
    /// half-open window `[old, new)` of indices published since the last
    /// notification, computed modulo 2^16.
    @inline(__always)
    public static func needEvent(event: UInt16, new: UInt16, old: UInt16) -> Bool {
        new &- event &- 1 < new &- old
    }

    /// Asks the driver to kick on new buffers (the worker is about to sleep).
    /// Returns true if buffers arrived meanwhile: poll again before sleeping.
    public func enableKickNotifications() -> Bool {
        guard brokenReason == nil else { return false }
        kickNotificationsEnabled = true
        if eventIdx {
            // virtio 1.x §2.7.10: with EVENT_IDX the driver kicks when it
            // passes avail_event.
            writeAvailEvent()
        } else {
            // SAFETY: used.flags at offset 0 of the checked used ring.
            guestStoreRelaxed16(used, 0)
        }
        // Full fence (StoreLoad): the flag / avail_event store must be visible
        // before we re-read avail.idx, or a driver that added a buffer and
        // read our old suppression state in between would not kick, and we
        // would not see its buffer: a lost kick.
        fullMemoryFence()
        return (try? hasAvailable()) ?? false
    }

    /// Asks the driver not to kick (the worker is polling).
    public func disableKickNotifications() {
        guard brokenReason == nil else { return }
        kickNotificationsEnabled = false
        if !eventIdx {
            // virtio 1.x §2.7.10: VRING_USED_F_NO_NOTIFY. With EVENT_IDX,
            // leaving avail_event behind suppresses kicks.
            // SAFETY: used.flags at offset 0 of the checked used ring.
            guestStoreRelaxed16(used, RingLayout.usedFlagNoNotify)
        }
    }
}
