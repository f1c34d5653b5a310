/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320): the checksum NVMe's
/// key format uses (`SecretKey`) and the one an `AuthResult` carries, so an
/// initiator polling its mailbox never takes a half-written result for a whole one.
public enum CRC32 {
    /// The CRC-32 of `bytes`.
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
