// Packed ring event suppression (virtio 1.x §2.8.10, structure §2.8.14):
//   le16 off_wrap  — bits 0-14 ring offset, bit 15 wrap counter (DESC mode)
//   le16 flags     — 0 ENABLE, 1 DISABLE, 2 DESC (only with VIRTIO_F_EVENT_IDX)
// The driver area holds the driver's wishes (used-buffer notifications), the
// device area the device's (available-buffer notifications / kicks).

extension PackedQueue {
    /// Ring position (slot, wrap) as a number in [0, 2*size): positions
    /// increase by one per slot and wrap every two laps. The wrap counter
    /// starts at 1, so the first lap has wrap 1.
    @inline(__always)
    static func linear(_ offWrap: UInt16, size: UInt16) -> Int {
        let off = Int(offWrap & 0x7FFF)
        return offWrap & 0x8000 != 0 ? off : off + Int(size)
    }

    /// Packed-ring `vring_need_event`: true iff position `event` lies in the
    /// half-open window `[old, new)` of positions written since the last
    /// notification, all as (slot | wrap << 15), compared modulo 2*size.
    public static func needEvent(event: UInt16, new: UInt16, old: UInt16, size: UInt16) -> Bool {
        let period = 2 * Int(size)
        let e = linear(event, size: size), n = linear(new, size: size), o = linear(old, size: size)
        let sinceEvent = ((n - e - 1) % period + period) % period
        let window = ((n - o) % period + period) % period
        return sinceEvent < window
    }

    private var usedState: UInt16 { nextUsed | (usedWrapCounter ? 0x8000 : 0) }
    private var availState: UInt16 { nextAvail | (availWrapCounter ? 0x8000 : 0) }

    /// Whether the driver must be notified of used descriptors written since
    /// the last call (virtio 1.x §2.8.10).
    public func needsNotification() -> Bool {
        guard brokenReason == nil else { return false }
        // Full fence (StoreLoad): our used descriptors' flags stores must be
        // visible before we read the driver's event suppression structure;
        // otherwise a driver that re-enables notifications and then re-checks
        // the ring could see neither our descriptor nor get our notification.
        fullMemoryFence()
        let old = signalledUsedState
        let new = usedState
        let valid = signalledUsedStateValid
        signalledUsedState = new
        signalledUsedStateValid = true
        // SAFETY: driverEvent spans 4 bytes, 4-aligned (checked at setup).
        let flags = guestLoadRelaxed16(driverEvent + 2) & 0x3
        let notify: Bool
        switch flags {
        case RingLayout.packedEventDisable:
            notify = false
        case RingLayout.packedEventDesc where eventIdx:
            // SAFETY: as above; off_wrap at offset 0.
            let offWrap = guestLoadRelaxed16(driverEvent)
            notify = old != new && (!valid || PackedQueue.needEvent(event: offWrap, new: new, old: old, size: size))
        default:
            // ENABLE, or DESC without EVENT_IDX / reserved value 3: notify
            // rather than risk a lost interrupt.
            notify = true
        }
        if notify { counters.notificationsSent += 1 } else { counters.notificationsSuppressed += 1 }
        return notify
    }

    /// Device event suppression in DESC mode: kick when the driver makes the
    /// descriptor at our next avail position available.
    func writeDeviceEventDesc() {
        // SAFETY: deviceEvent spans 4 bytes, 4-aligned (checked at setup).
        guestStoreRelaxed16(deviceEvent, availState)
        guestStoreRelaxed16(deviceEvent + 2, RingLayout.packedEventDesc)
    }

    public func enableKickNotifications() -> Bool {
        guard brokenReason == nil else { return false }
        kickNotificationsEnabled = true
        if eventIdx {
            writeDeviceEventDesc()
        } else {
            // SAFETY: as in writeDeviceEventDesc.
            guestStoreRelaxed16(deviceEvent + 2, RingLayout.packedEventEnable)
        }
        // Full fence (StoreLoad): publish the request before re-checking the
        // ring, or a descriptor made available in between is missed (lost kick).
        fullMemoryFence()
        return (try? hasAvailable()) ?? false
    }

    public func disableKickNotifications() {
        guard brokenReason == nil else { return }
        kickNotificationsEnabled = false
        // SAFETY: as in writeDeviceEventDesc.
        guestStoreRelaxed16(deviceEvent + 2, RingLayout.packedEventDisable)
    }
}
