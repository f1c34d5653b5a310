import Virtio

/// The frames the net load generator sends, as they sit in a guest buffer
/// (virtio_net_hdr_v1, then the Ethernet frame):
///
/// ```
/// +0   virtio-net header (12 bytes, zero; num_buffers written by the device on RX)
/// +12  destination MAC, source MAC, EtherType 0x88B5 (local experimental)
/// +26  magic (u32 LE): data or hello
/// +30  sequence number (u64 LE), from 1, +1 per frame sent
/// ...  filler (byte i of the frame = i & 0xff), written once
/// -8   the sequence number's complement (u64 LE): a truncated or mixed frame fails it
/// ```
///
/// Stamping a frame writes 16 bytes; validating reads the header and 26
/// bytes. MAC addresses are kept as 48-bit integers (first byte lowest).
enum NetFrameLayout {
    static let headerBytes = VirtioNet.Header.size
    static let etherType: UInt16 = 0x88B5
    static let dataMagic: UInt32 = 0x3142_4E56   // "VNB1"
    static let helloMagic: UInt32 = 0x4F4C_4548  // "HELO"
    /// Smallest frame the layout fits in (Ethernet minimum without FCS).
    static let minFrameBytes = 60
    private static let magicOffset = headerBytes + 14
    private static let sequenceOffset = magicOffset + 4

    /// The 48-bit value of `mac` (6 bytes).
    static func macValue(_ mac: [UInt8]) -> UInt64 {
        precondition(mac.count == 6)
        return mac.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    /// "52:54:00:..." for a 48-bit MAC value.
    static func macText(_ v: UInt64) -> String {
        (0..<6).map { i -> String in
            let b = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))
            return (b < 16 ? "0" : "") + String(b, radix: 16)
        }.joined(separator: ":")
    }

    @inline(__always)
    private static func loadMAC(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(p.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
            | UInt64(p.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self).littleEndian) << 32
    }

    private static func storeMAC(_ v: UInt64, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, toByteOffset: offset, as: UInt32.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: v >> 32).littleEndian, toByteOffset: offset + 4, as: UInt16.self)
    }

    /// Writes the whole buffer (header + `frameBytes` frame) once, sequence 0.
    static func writeTemplate(_ p: UnsafeMutableRawPointer, frameBytes: Int, dst: UInt64, src: UInt64, magic: UInt32) {
        precondition(frameBytes >= minFrameBytes)
        // SAFETY: the caller's buffer holds headerBytes + frameBytes bytes.
        p.initializeMemory(as: UInt8.self, repeating: 0, count: headerBytes)
        for i in 0..<frameBytes { p.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: headerBytes + i, as: UInt8.self) }
        storeMAC(dst, p, headerBytes)
        storeMAC(src, p, headerBytes + 6)
        p.storeBytes(of: etherType.bigEndian, toByteOffset: headerBytes + 12, as: UInt16.self)
        p.storeBytes(of: magic.littleEndian, toByteOffset: magicOffset, as: UInt32.self)
        stamp(p, frameBytes: frameBytes, sequence: 0)
    }

    /// Writes `sequence` and its complement into a templated buffer.
    @inline(__always)
    static func stamp(_ p: UnsafeMutableRawPointer, frameBytes: Int, sequence: UInt64) {
        // SAFETY: both offsets lie inside headerBytes + frameBytes (frameBytes ≥ minFrameBytes).
        p.storeBytes(of: sequence.littleEndian, toByteOffset: sequenceOffset, as: UInt64.self)
        p.storeBytes(of: (~sequence).littleEndian, toByteOffset: headerBytes + frameBytes - 8, as: UInt64.self)
    }

    /// What a received buffer holds.
    enum Check: Equatable {
        /// A data frame for `dst` from `src` of the expected length: its sequence number.
        case data(UInt64)
        /// Not a load-generator data frame (other EtherType or magic, e.g. a hello).
        case foreign
        /// A data frame that is wrong: length, addresses, header or trailer.
        case corrupt
    }

    /// Checks `length` bytes (header included, as the used entry says) at `p`
    /// (a buffer of at least `capacity` bytes) against a `frameBytes` data frame.
    @inline(__always)
    static func check(_ p: UnsafeRawPointer, length: Int, capacity: Int, frameBytes: Int, dst: UInt64, src: UInt64) -> Check {
        guard length >= headerBytes + minFrameBytes, length <= capacity else {
            return length < headerBytes + 14 ? .corrupt : .foreign
        }
        // SAFETY: every read below is inside [0, length), length ≤ capacity.
        guard p.loadUnaligned(fromByteOffset: headerBytes + 12, as: UInt16.self) == etherType.bigEndian,
              p.loadUnaligned(fromByteOffset: magicOffset, as: UInt32.self) == dataMagic.littleEndian else { return .foreign }
        guard length == headerBytes + frameBytes,
              UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 10, as: UInt16.self)) == 1,  // num_buffers
              loadMAC(p, headerBytes) == dst, loadMAC(p, headerBytes + 6) == src else { return .corrupt }
        let seq = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: sequenceOffset, as: UInt64.self))
        let trailer = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self))
        return trailer == ~seq ? .data(seq) : .corrupt
    }
}
