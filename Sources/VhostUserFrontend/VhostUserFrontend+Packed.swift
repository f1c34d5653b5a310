import VhostUser
import Virtio
import VirtioDriver
import VireoSys

extension VhostUserFrontend {
    /// One packed ring (VIRTIO_F_RING_PACKED) as the front-end sees it.
    public final class PackedRing {
        public let index: Int
        public let driver: PackedDriverQueue
        /// The front-end's ends of the kick and call eventfds.
        public let kick: SharedEventFD
        public let call: SharedEventFD
        init(index: Int, driver: PackedDriverQueue, kick: SharedEventFD, call: SharedEventFD) {
            self.index = index; self.driver = driver; self.kick = kick; self.call = call
        }
    }

    /// The packed SET_VRING_BASE / GET_VRING_BASE value (vhost-user.rst):
    /// avail slot | wrap << 15 in bits 0-15, used slot | wrap << 15 in bits 16-31.
    public static func packedBase(availSlot: UInt16, availWrap: Bool, usedSlot: UInt16, usedWrap: Bool) -> UInt32 {
        UInt32(availSlot & 0x7FFF | (availWrap ? 0x8000 : 0)) | UInt32(usedSlot & 0x7FFF | (usedWrap ? 0x8000 : 0)) << 16
    }

    /// SET_VRING_NUM, BASE, ADDR, CALL, KICK (and ENABLE) for a packed ring
    /// driven by `driver`, as queue `index`. `base` defaults to the driver's
    /// current positions.
    @discardableResult
    public func setUpPackedRing(_ index: Int, driver: PackedDriverQueue, base: UInt32? = nil) throws(VhostUserFrontendError) -> PackedRing {
        let b = base ?? Self.packedBase(availSlot: driver.nextAvail, availWrap: driver.availWrapCounter,
                                        usedSlot: driver.nextUsed, usedWrap: driver.usedWrapCounter)
        let (kick, call) = try setUpRingCommon(index, size: driver.size, base: b) { () throws(VhostUserFrontendError) in
            let a = driver.frontendAddresses
            var p: [UInt8] = []
            VhostUserVringAddress(index: UInt32(index), flags: 0, descriptorTable: a.descriptors, usedRing: a.deviceArea,
                                  availableRing: a.driverArea, logGuestAddress: 0).encode(into: &p)
            try request(.setVringAddr, payload: p)
        }
        let ring = PackedRing(index: index, driver: driver, kick: kick, call: call)
        packedRings[index] = ring
        return ring
    }

    /// Kicks packed ring `index` if the device wants it (§2.8.21.3).
    public func kickPacked(_ index: Int) {
        guard let r = packedRings[index] else { return }
        if r.driver.kick() { r.kick.signal() }
    }

    /// Waits for `count` used descriptors on packed ring `index` (call
    /// eventfd, with a poll fallback); fewer on timeout.
    public func waitForPackedUsed(_ index: Int, count: Int, timeoutMilliseconds: Int = 5000) -> [(id: UInt16, length: UInt32)] {
        guard let r = packedRings[index] else { return [] }
        return waitForCalls(r.call, count: count, timeoutMilliseconds: timeoutMilliseconds,
                            pop: r.driver.popUsed, enableInterrupts: r.driver.enableInterrupts)
    }
}
