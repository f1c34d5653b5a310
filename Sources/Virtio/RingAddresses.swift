/// Where a virtqueue's three areas live (virtio 1.x §2.6).
///
/// Split queue: descriptor table, available ring (driver area), used ring
/// (device area). Packed queue: descriptor ring, driver event suppression
/// (driver area), device event suppression (device area).
public struct RingAddresses: Equatable, Sendable {
    /// How the addresses are to be translated.
    public enum Space: Equatable, Sendable {
        /// Guest-physical addresses (what a driver writes into a transport).
        case guestPhysical
        /// Front-end (VMM) virtual addresses, as vhost-user `SET_VRING_ADDR` sends them.
        case frontendVirtual
    }

    public var descriptors: UInt64
    public var driverArea: UInt64
    public var deviceArea: UInt64
    public var space: Space

    public init(descriptors: UInt64, driverArea: UInt64, deviceArea: UInt64, space: Space) {
        self.descriptors = descriptors
        self.driverArea = driverArea
        self.deviceArea = deviceArea
        self.space = space
    }
}

extension GuestMemory {
    /// Host pointer for a ring area of `length` bytes at `address` in `space`,
    /// checking `alignment` on the host pointer (which also holds the guest
    /// alignment, as regions are page aligned).
    func ringPointer(
        _ address: UInt64, length: Int, alignment: Int, space: RingAddresses.Space, area: RingArea
    ) throws(QueueSetupError) -> UnsafeMutableRawPointer {
        guard address % UInt64(alignment) == 0 else { throw .misaligned(area) }
        let p: UnsafeMutableRawPointer?
        switch space {
        case .guestPhysical: p = hostPointer(gpa: address, length: UInt64(length))
        case .frontendVirtual: p = hostPointer(userAddr: address, length: UInt64(length))
        }
        guard let p else { throw .ringUnmapped(area) }
        guard Int(bitPattern: p) % alignment == 0 else { throw .misaligned(area) }
        return p
    }
}
