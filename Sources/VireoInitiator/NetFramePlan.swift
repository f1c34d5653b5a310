import Virtio
import VireoFabric
import VireoWire

/// How guest virtio-net chains become RDMA work requests, zero-copy: a TX
/// chain's readable segments are the SEND's gather list, an RX chain's
/// writable segments a receive's scatter list. Each segment lies in one
/// registered region (chains split at region boundaries) whose iova is the
/// guest-physical address, so an SGE is (guest address, length, region lkey).
/// Pure functions over caller-provided storage: no allocation.
enum NetFramePlan {
    /// Why a TX chain is dropped (completed to the guest unsent).
    enum TransmitDrop: Equatable, Sendable {
        /// More segments than SGEs per SEND.
        case tooManySegments
        /// Longer than the negotiated max frame.
        case tooLong
        /// Shorter than virtio-net header + Ethernet header.
        case tooShort
        /// A device-writable descriptor in a TX chain.
        case writableSegment
        /// A segment outside registered guest memory.
        case unregistered
    }

    /// A TX chain's plan.
    enum Transmit: Equatable, Sendable {
        /// SEND `count` SGEs (written to the output) of `bytes` total.
        case send(count: Int, bytes: UInt32)
        case drop(TransmitDrop)
    }

    /// Smallest frame: virtio-net header + Ethernet header.
    static let minFrameBytes = UInt32(Wire.netHeaderSize + Wire.ethernetHeaderSize)

    /// The gather list of TX chain `chain` (virtio-net header + frame, all
    /// device-readable), written to `sges` (room for `maxSegments`).
    static func transmit(_ chain: Chain, regions: GuestRegionTable, maxSegments: Int, maxFrameBytes: UInt32,
                         into sges: UnsafeMutablePointer<ScatterGatherElement>) -> Transmit {
        guard chain.writableBytes == 0, chain.readableSegmentCount == chain.count else { return .drop(.writableSegment) }
        let bytes = chain.readableBytes
        guard bytes >= minFrameBytes else { return .drop(.tooShort) }
        guard bytes <= maxFrameBytes else { return .drop(.tooLong) }
        guard chain.count <= maxSegments else { return .drop(.tooManySegments) }
        for (i, s) in chain.readableSegments.enumerated() {
            guard let e = regions.lookup(address: s.guestAddr, length: UInt64(s.length), hint: s.region) else { return .drop(.unregistered) }
            // SAFETY: i < chain.count <= maxSegments, the capacity of `sges`.
            sges[i] = ScatterGatherElement(address: s.guestAddr, length: s.length, lkey: e.lkey)
        }
        return .send(count: chain.count, bytes: bytes)
    }

    /// The scatter list of RX chain `chain` (all device-writable), written to
    /// `sges` (room for `maxSegments`). Returns the SGE count, or nil when the
    /// chain cannot be a receive buffer (readable descriptors, too many
    /// segments, no room for a virtio-net header, unregistered memory).
    static func receive(_ chain: Chain, regions: GuestRegionTable, maxSegments: Int,
                        into sges: UnsafeMutablePointer<ScatterGatherElement>) -> Int? {
        guard chain.readableSegmentCount == 0, chain.count > 0, chain.count <= maxSegments,
              chain.writableBytes >= UInt32(Wire.netHeaderSize) else { return nil }
        for (i, s) in chain.writableSegments.enumerated() {
            guard let e = regions.lookup(address: s.guestAddr, length: UInt64(s.length), hint: s.region) else { return nil }
            // SAFETY: i < chain.count <= maxSegments, the capacity of `sges`.
            sges[i] = ScatterGatherElement(address: s.guestAddr, length: s.length, lkey: e.lkey)
        }
        return chain.count
    }

    /// Spreads a received frame of `byteLength` bytes over buffers of the
    /// given `capacities`, in order (the RNIC fills the scatter list in order).
    /// Writes each used buffer's length to `lengths`; returns how many buffers
    /// the frame used (at least 1). Overflow-safe.
    static func spread(byteLength: UInt32, capacities: UnsafeBufferPointer<UInt32>,
                       lengths: UnsafeMutablePointer<UInt32>) -> Int {
        var left = byteLength
        var used = 0
        for c in capacities {
            let take = min(left, c)
            lengths[used] = take
            used += 1
            left -= take
            if left == 0 { break }
        }
        return max(used, 1)
    }

    /// The destination and source MAC of a frame received into `chain`
    /// (after the 12-byte header); nil when the chain is too short. Reads 12
    /// bytes of guest memory in place (no copy).
    static func addresses(in chain: Chain) -> (destination: MACAddress, source: MACAddress)? {
        let at = UInt32(Wire.netHeaderSize)
        guard chain.writableBytes >= at + 12 else { return nil }
        let first = chain.writableSegments[0]
        if first.length >= at + 12 {
            return (MACAddress(first.hostPointer, offset: Int(at)), MACAddress(first.hostPointer, offset: Int(at) + 6))
        }
        var d: UInt64 = 0, s: UInt64 = 0
        for k in UInt32(0)..<6 {
            // SAFETY: offsets < writableBytes (checked above); one byte each.
            guard let a = chain.writableByte(at: at + k), let b = chain.writableByte(at: at + 6 + k) else { return nil }
            d = d << 8 | UInt64(a.load(as: UInt8.self))
            s = s << 8 | UInt64(b.load(as: UInt8.self))
        }
        return (MACAddress(rawValue: d), MACAddress(rawValue: s))
    }

    /// Writes the `virtio_net_hdr_v1` of a received frame into its first
    /// buffer: every field zero but `num_buffers` (le16 at offset 10). A
    /// 12-byte CPU write into guest memory (not payload). The header arrived
    /// from the target with the frame; no offload is negotiated (§5.1.6.4:
    /// flags, gso_type, hdr_len, gso_size, csum_* are then zero), so whatever
    /// a sender put there (DATA_VALID, GSO) never reaches the guest.
    /// Returns false when the chain has no room for the header.
    @discardableResult
    static func writeReceiveHeader(numBuffers n: UInt16, into chain: Chain) -> Bool {
        let size = UInt32(VirtioNet.Header.size)
        guard chain.writableBytes >= size else { return false }
        let first = chain.writableSegments[0]
        if first.length >= size {
            // SAFETY: 12 bytes inside the first writable segment.
            first.hostPointer.initializeMemory(as: UInt8.self, repeating: 0, count: 10)
            first.hostPointer.storeBytes(of: n.littleEndian, toByteOffset: 10, as: UInt16.self)
            return true
        }
        for k in UInt32(0)..<size {
            // SAFETY: k < writableBytes (checked above); one byte inside a writable segment.
            guard let p = chain.writableByte(at: k) else { return false }
            let byte: UInt8 = k == 10 ? UInt8(truncatingIfNeeded: n) : k == 11 ? UInt8(truncatingIfNeeded: n >> 8) : 0
            p.storeBytes(of: byte, as: UInt8.self)
        }
        return true
    }
}
