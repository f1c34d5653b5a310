/// A 48-bit Ethernet address, held in the low 48 bits of a `UInt64` with the
/// first octet most significant (so `52:54:00:12:34:56` is `0x5254_0012_3456`).
public struct MACAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    @inline(__always)
    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xffff_ffff_ffff }

    /// Reads six octets at `p + offset` (caller checks bounds).
    @inline(__always)
    public init(_ p: UnsafeRawPointer, offset: Int) {
        // Big endian 16 + 32 bits: octet 0 ends up most significant.
        let hi = UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
        let lo = UInt64(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset + 2, as: UInt32.self)))
        rawValue = hi << 32 | lo
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let fields = parts.count == 6 ? parts : text.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 6 else { return nil }
        var v: UInt64 = 0
        for f in fields {
            guard f.count == 2, let octet = UInt8(f, radix: 16) else { return nil }
            v = v << 8 | UInt64(octet)
        }
        rawValue = v
    }

    public static let broadcast = MACAddress(rawValue: 0xffff_ffff_ffff)

    /// Group bit (bit 0 of the first octet): broadcast and multicast.
    @inline(__always)
    public var isMulticast: Bool { rawValue & (1 << 40) != 0 }
    @inline(__always)
    public var isBroadcast: Bool { rawValue == 0xffff_ffff_ffff }
    @inline(__always)
    public var isZero: Bool { rawValue == 0 }

    /// Writes the six octets at `p + offset`.
    @inline(__always)
    public func store(to p: UnsafeMutableRawPointer, offset: Int) {
        p.storeBytes(of: UInt16(truncatingIfNeeded: rawValue >> 32).bigEndian, toByteOffset: offset, as: UInt16.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: rawValue).bigEndian, toByteOffset: offset + 2, as: UInt32.self)
    }

    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        (0..<6).map { i in
            let octet = UInt8(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * i))
            return (octet < 16 ? "0" : "") + String(octet, radix: 16)
        }.joined(separator: ":")
    }
}
