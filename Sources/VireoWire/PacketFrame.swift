/// Validation of one packet SEND payload: `virtio_net_hdr_v1` (12 bytes, as
/// the guest wrote it) followed by an Ethernet frame. Nothing may look at a
/// peer's frame before `validate` accepted it.
public enum PacketFrame {
    /// What `validate` found in a good frame.
    public struct Summary: Equatable, Sendable {
        public var destination: MACAddress
        public var source: MACAddress
        /// The outer EtherType (0x8100 / 0x88a8 for a tagged frame).
        public var etherType: UInt16

        public init(destination: MACAddress, source: MACAddress, etherType: UInt16) {
            self.destination = destination
            self.source = source
            self.etherType = etherType
        }
    }

    /// Why a frame was refused. Raw values are stable (counters, logs).
    public enum DropReason: UInt8, Error, Sendable, CaseIterable {
        /// Shorter than virtio-net header + Ethernet header (26 bytes).
        case tooShort = 1
        /// Longer than the negotiated max frame (or than max frame − 4 without a VLAN tag).
        case tooLong = 2
        /// virtio-net header flags other than 0 or DATA_VALID (no checksum offload in v1).
        case badHeaderFlags = 3
        /// gso_type other than NONE (segmentation offloads are off in v1).
        case gsoNotSupported = 4
        /// Source MAC is a group (multicast/broadcast) address or all zero.
        case badSourceAddress = 5
    }

    /// Header flags a frame may carry: DATA_VALID (bit 1).
    public static let allowedHeaderFlags: UInt8 = 2
    /// Smallest valid payload: header + Ethernet header.
    public static let minBytes = Wire.netHeaderSize + Wire.ethernetHeaderSize

    /// Validates `byteCount` bytes at `p` against `maxFrame` (the geometry's
    /// max frame bytes, which includes room for one VLAN tag: untagged frames
    /// may be at most `maxFrame − 4` bytes). Reads only inside `byteCount`.
    @inline(__always)
    public static func validate(_ p: UnsafeRawPointer, byteCount: Int, maxFrame: Int) -> Result<Summary, DropReason> {
        guard byteCount >= minBytes else { return .failure(.tooShort) }
        guard byteCount <= maxFrame else { return .failure(.tooLong) }
        let flags = p.load(fromByteOffset: 0, as: UInt8.self)
        guard flags & ~allowedHeaderFlags == 0 else { return .failure(.badHeaderFlags) }
        guard p.load(fromByteOffset: 1, as: UInt8.self) == 0 else { return .failure(.gsoNotSupported) }
        let e = Wire.netHeaderSize
        let dst = MACAddress(p, offset: e)
        let src = MACAddress(p, offset: e + 6)
        guard !src.isMulticast, !src.isZero else { return .failure(.badSourceAddress) }
        let etherType = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: e + 12, as: UInt16.self))
        let tagged = etherType == 0x8100 || etherType == 0x88a8
        // maxFrame ≥ 0 here (byteCount ≥ 26 ≤ maxFrame), so subtracting 4 cannot overflow.
        guard tagged || byteCount <= maxFrame - Wire.vlanTagSize else { return .failure(.tooLong) }
        return .success(Summary(destination: dst, source: src, etherType: etherType))
    }
}
